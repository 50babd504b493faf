// Riskdesk browser glue. Loaded with `defer` after htmx; no inline scripts anywhere (CSP).
(function () {
  "use strict";

  // htmx does not swap 4xx/5xx responses (see the htmx-config meta tag), except 409/422 which
  // replace their target in place. For the others the server sends an `_error.html` fragment;
  // show it in the page's flash area so a failed action never fails silently.
  function showFlash(nodes) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    var box = document.createElement("div");
    box.className = "flash-htmx";
    box.append.apply(box, nodes);
    flash.replaceChildren(box);
  }

  function messageNode(text) {
    var div = document.createElement("div");
    div.className = "alert alert-error";
    div.setAttribute("role", "alert");
    div.textContent = text;
    return div;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("text/html") === 0 && xhr.responseText) {
      // Parsed inertly (DOMParser runs no scripts), from our own origin only (selfRequestsOnly).
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      showFlash(Array.prototype.slice.call(doc.body.childNodes));
    } else {
      showFlash([messageNode("The request failed (HTTP " + xhr.status + "). Please try again.")]);
    }
  });

  document.addEventListener("htmx:sendError", function () {
    showFlash([messageNode("The server could not be reached. Check your connection and try again.")]);
  });

  // A new action clears the previous action's error.
  document.addEventListener("htmx:beforeRequest", function () {
    var old = document.querySelectorAll("#flash .flash-htmx");
    for (var i = 0; i < old.length; i++) old[i].remove();
  });
})();
