"""The demo: a Control Site and six POCare sites with their people, the CD19 CAR-T master file,
about 18 months of generated manufacturing history and the live batches — loaded by `pocare demo`.

This app sits on top of every other app and no app imports it: the domain apps hold no demo code.
What a person would do goes through the same services a person uses (``people``, ``network``,
``masterfile``, ``training``, ``batches``, ``quality``); only the generated history (``history``)
writes rows directly, because no service may back-date years of records — each such write is
marked ``# demo:`` with the reason. ``loader.load`` runs the whole of it in order.
"""
