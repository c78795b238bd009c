/*! Lotse widget loader. Embed with
 *  <script src="https://HOST/widget/lotse.js" data-lotse-api="https://HOST" defer></script>
 *  It loads the widget module and its WebAssembly from beside this file and mounts the chat
 *  and the Einfache-Sprache button. Options: the data-lotse-* attributes (see README). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__lotseLoaded) { return; }
  window.__lotseLoaded = true;
  var base = new URL(".", script.src);
  var version = script.getAttribute("data-lotse-version") || "__LOTSE_VERSION__";
  function start() {
    import(new URL("lotse_widget.js?v=" + version, base).href)
      .then(function (m) {
        return m.default({ module_or_path: new URL("lotse_widget_bg.wasm?v=" + version, base) })
          .then(function () { m.mount(script); });
      })
      .catch(function (e) {
        // the page stays fully usable without the widget
        if (window.console) { console.warn("Lotse widget could not start:", e); }
      });
  }
  if (typeof WebAssembly !== "object") { return; }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
