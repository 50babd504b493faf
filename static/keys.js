// Keyboard shortcuts for the queue and case screens, and the queue's row selection.
// Loaded with `defer` (no inline scripts: CSP). Keys never fire while typing in a field.
//   Queue: j / k move a visible focus between rows, Enter opens the focused case, x ticks it,
//          n claims the next case, / goes to the search box, ? lists the keys.
//   Case:  a / r / e put the focus on Approve / Reject / Escalate (Enter or Space records it),
//          n claims the next case when the page offers it, ? lists the keys.
(function () {
  "use strict";

  var QUEUE_KEYS = [
    ["j", "Move to the next case in the list"],
    ["k", "Move to the previous case in the list"],
    ["Enter", "Open the case you moved to"],
    ["x", "Tick or untick that case for a bulk action"],
    ["n", "Claim the next case"],
    ["/", "Go to the search box"],
    ["?", "Show this list"],
  ];
  var CASE_KEYS = [
    ["a", "Go to Approve (then Enter records it)"],
    ["r", "Go to Reject"],
    ["e", "Go to Escalate"],
    ["n", "Claim the next case (once this one is decided)"],
    ["?", "Show this list"],
  ];
  var DECISIONS = { a: "approve", r: "reject", e: "escalate" };
  var TEXT_INPUTS = /^(text|search|email|url|password|number|tel|date|datetime-local|month|week|time)$/;

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    return tag === "INPUT" && TEXT_INPUTS.test(el.type || "text");
  }

  function queueRows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-rows tr.queue-row"));
  }

  function currentRowIndex(rows) {
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].contains(document.activeElement) || rows[i].classList.contains("row-focus")) return i;
    }
    return -1;
  }

  function focusRow(rows, index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row) { row.classList.remove("row-focus"); });
    var row = rows[index];
    row.classList.add("row-focus");
    var link = row.querySelector("a.case-link");
    if (link) link.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function submitNext() {
    var form = document.querySelector('form[action="/cases/next"]');
    if (!form) return false;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
    return true;
  }

  // --- the key list: one accessible dialog, built once ------------------------------------
  var dialog = null;

  function keysDialog() {
    if (dialog) return dialog;
    var keys = document.getElementById("queue-rows") ? QUEUE_KEYS : CASE_KEYS;
    dialog = document.createElement("dialog");
    dialog.className = "keys-dialog";
    dialog.id = "keys-dialog";
    dialog.setAttribute("aria-labelledby", "keys-dialog-title");
    var title = document.createElement("h2");
    title.id = "keys-dialog-title";
    title.textContent = "Keyboard shortcuts";
    var list = document.createElement("dl");
    keys.forEach(function (pair) {
      var dt = document.createElement("dt");
      var kbd = document.createElement("kbd");
      kbd.textContent = pair[0];
      dt.appendChild(kbd);
      var dd = document.createElement("dd");
      dd.textContent = pair[1];
      list.append(dt, dd);
    });
    var form = document.createElement("form");
    form.method = "dialog";
    var close = document.createElement("button");
    close.type = "submit";
    close.className = "btn";
    close.textContent = "Close";
    form.appendChild(close);
    dialog.append(title, list, form);
    document.body.appendChild(dialog);
    return dialog;
  }

  function showKeys() {
    // The dialog's styles live with the queue's; a page without them (the case page) gets them now.
    if (!document.querySelector('link[href="/static/queue.css"]')) {
      var sheet = document.createElement("link");
      sheet.rel = "stylesheet";
      sheet.href = "/static/queue.css";
      document.head.appendChild(sheet);
    }
    var d = keysDialog();
    if (!d.open) d.showModal();
  }

  // --- keys --------------------------------------------------------------------------------
  function onQueueKey(event, rows) {
    var key = event.key;
    if (key === "j" || key === "k") {
      var index = currentRowIndex(rows);
      focusRow(rows, index < 0 ? 0 : index + (key === "j" ? 1 : -1));
      return true;
    }
    if (key === "x") {
      var row = rows[currentRowIndex(rows)];
      var box = row && row.querySelector("input.row-select");
      if (!box) return false;
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    if (key === "Enter") {
      // On a focused link the browser opens it already; from a row's checkbox, open its case.
      var focused = rows[currentRowIndex(rows)];
      if (!focused || document.activeElement.tagName === "A") return false;
      var link = focused.querySelector("a.case-link");
      if (link) window.location.assign(link.href);
      return Boolean(link);
    }
    if (key === "/") {
      var search = document.getElementById("queue-search");
      if (search) search.focus();
      return Boolean(search);
    }
    return false;
  }

  function onCaseKey(event) {
    var decision = DECISIONS[event.key];
    if (!decision) return false;
    var button = document.querySelector('[data-shortcut="' + event.key + '"]') ||
      document.querySelector('button[name="decision"][value="' + decision + '"]');
    if (!button) return false;
    button.focus();
    button.scrollIntoView({ block: "nearest" });
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || (dialog && dialog.open)) return;
    var handled = false;
    if (event.key === "?") {
      showKeys();
      handled = true;
    } else if (event.key === "n") {
      handled = submitNext();
    } else if (document.getElementById("queue-rows")) {
      handled = onQueueKey(event, queueRows());
    } else {
      handled = onCaseKey(event);
    }
    if (handled) event.preventDefault();
  });

  // --- the queue's selection and bulk bar -----------------------------------------------
  function selectedCount() {
    return document.querySelectorAll("#queue-rows input.row-select:checked").length;
  }

  function updateSelection() {
    var hint = document.getElementById("bulk-selected");
    if (!hint) return;
    var n = selectedCount();
    hint.textContent = n === 0
      ? "Tick cases in the list, then choose what to do with them."
      : n + (n === 1 ? " case selected." : " cases selected.");
  }

  function showActionFields() {
    var action = document.getElementById("bulk-action");
    if (!action) return;
    var assignee = document.getElementById("bulk-assignee");
    var note = document.getElementById("bulk-note");
    if (assignee) assignee.closest("label").hidden = action.value !== "assign";
    if (note) note.closest("label").hidden = action.value !== "escalate";
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("#queue-rows input.row-select").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.id === "bulk-action") showActionFields();
    if (target.id === "select-all" || target.classList.contains("row-select")) updateSelection();
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-keys-help]");
    if (opener) showKeys();
  });

  // New rows (search, filters, a bulk action's reload) start with nothing ticked.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "queue-rows") {
      var all = document.getElementById("select-all");
      if (all) all.checked = false;
      updateSelection();
    }
  });

  showActionFields();
})();
