// POCare's page behaviour, in one static file so that the Content-Security-Policy can forbid
// inline script (script-src 'self'): templates say what they want with data- attributes.
(function () {
  "use strict";

  // <form data-confirm="…">: ask before an irreversible or signed action is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <select data-autosubmit>: choosing a value sends the form (a <noscript> button stands in).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit();
    }
  });

  // <button data-busy>: mark the button busy while a slow request runs.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("button[data-busy]") : null;
    if (button) { button.setAttribute("aria-busy", "true"); }
  });

  // Dialogs: [data-open=id] opens one, [data-close] inside closes it, dialog[data-reopen] opens on load
  // (a refused form comes back with its dialog open).
  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) { return; }
    var opener = event.target.closest("[data-open]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.open);
      if (dialog) { dialog.showModal(); }
    }
    var closer = event.target.closest("dialog [data-close]");
    if (closer) { closer.closest("dialog").close(); }
  });
  function reopen() {
    document.querySelectorAll("dialog[data-reopen]").forEach(function (d) { if (!d.open) { d.showModal(); } });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", reopen); } else { reopen(); }

  // <input data-hide-while="select-id=value">: its field is hidden while that select holds that value (a
  // reason asked only when another choice is made: a lot other than the one proposed). It stays shown while
  // it holds text or an error; without script it is always shown.
  function hideWhile() {
    document.querySelectorAll("[data-hide-while]").forEach(function (input) {
      var rule = input.getAttribute("data-hide-while"), at = rule.lastIndexOf("=");
      var select = document.getElementById(rule.slice(0, at));
      var field = input.closest(".field") || input;
      if (select) {
        field.hidden = select.value === rule.slice(at + 1) && !input.value && !field.classList.contains("has-error");
      }
    });
  }
  document.addEventListener("change", hideWhile);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", hideWhile); } else { hideWhile(); }

  // htmx forms with data-drop-empty send only the filters that are filled in; data-fallback-submit
  // sends the form the ordinary way when the fragment request fails.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-drop-empty]")) {
      var parameters = event.detail.parameters;
      Object.keys(parameters).forEach(function (k) { if (parameters[k] === "") { delete parameters[k]; } });
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var form = event.target instanceof Element ? event.target.closest("form[data-fallback-submit]") : null;
    if (form) { form.submit(); }
  });
  // data-pause-while="selector": a polling element skips its request while the selector matches (an
  // acknowledgement form being typed in is not replaced). An htmx trigger filter would need eval,
  // which the policy forbids (htmx allowEval: false).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    var selector = element instanceof Element ? element.getAttribute("data-pause-while") : null;
    if (selector && document.querySelector(selector)) { event.preventDefault(); }
  });
  // data-swap-422: a refused form (422) is shown with its messages, not dropped as an error.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422 && event.target instanceof Element
        && event.target.closest("[data-swap-422]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
