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
  // A table wider than its panel scrolls inside it; keyboard users must be able to focus the
  // scrolling box to scroll it (axe: scrollable-region-focusable).
  function focusableScrollers(root) {
    var boxes = (root || document).querySelectorAll(".table-wrap, .scroll-x");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        if (!box.hasAttribute("role") && !box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
          var label = box.querySelector("caption, table[aria-label]");
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", label ? (label.getAttribute("aria-label") || label.textContent.trim()) : "Scrollable table");
        }
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () { focusableScrollers(document); });
  window.addEventListener("resize", function () { focusableScrollers(document); });
  document.addEventListener("htmx:afterSettle", function () { focusableScrollers(document); });

  // Copy buttons: <button data-copy="#element-id"> copies that input's value (the webhook secret).
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var done = function () {
      var status = document.getElementById(button.getAttribute("aria-describedby") || "");
      if (status) status.textContent = "Copied to the clipboard.";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(done, function () { source.select(); });
    } else {
      source.select();
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
    }
  });

  // Copy buttons only make sense with script: they are hidden until this runs.
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy][hidden]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  });
})();
