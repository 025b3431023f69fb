// The main navigation's menus (<details data-menu>): one open at a time, closed by a click
// elsewhere or by Escape (focus goes back to the menu's name).
(function () {
  "use strict";
  function menus() { return document.querySelectorAll("details[data-menu]"); }
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!(opened instanceof HTMLDetailsElement) || !opened.hasAttribute("data-menu") || !opened.open) { return; }
    menus().forEach(function (d) { if (d !== opened) { d.open = false; } });
  }, true);
  document.addEventListener("click", function (event) {
    var inside = event.target instanceof Element ? event.target.closest("details[data-menu]") : null;
    menus().forEach(function (d) { if (d !== inside) { d.open = false; } });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    menus().forEach(function (d) {
      if (d.open) { d.open = false; d.querySelector("summary").focus(); }
    });
  });
})();
