/* The host's moderation console: the held queue, refreshed every 2 s through the JSON API and
   run from the keyboard (j/k or ↓/↑, a, r, p, x then A) or its buttons. A message another host
   handled first (409 already_handled) leaves the queue at once. Every message's words are set
   as text, never as HTML. Without this file the page still shows the queue and bans by form. */
(function () {
  "use strict";
  var root = document.getElementById("moderation");
  if (!root || !window.fetch || !window.JSON) { return; }

  var eventId = root.getAttribute("data-event-id");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var texts = JSON.parse(document.getElementById("moderation-text").textContent);
  var list = document.getElementById("queue");
  var empty = document.getElementById("queue-empty");
  var count = document.getElementById("queue-count");
  var notice = document.getElementById("moderation-notice");
  var approvedList = document.getElementById("approved");
  var batchButton = document.getElementById("batch-approve");
  var batchCount = document.getElementById("batch-count");
  var banChoice = document.getElementById("ban-message");
  var POLL_MS = 2000;
  var NOTICE_MS = 4000;

  var queue = [];          // held messages, oldest first
  var current = 0;         // index of the message the keys act on
  var selected = {};       // id → true: chosen for batch approval
  var gone = {};           // id → true: decided here or by another host; never shown again
  var lastSeq = parseInt(root.getAttribute("data-last-seq"), 10) || 0;
  var noticeTimer = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function say(text, tone) {
    notice.textContent = text;
    notice.className = "moderation-notice tone-" + (tone || "ok");
    notice.hidden = false;
    if (noticeTimer) { window.clearTimeout(noticeTimer); }
    noticeTimer = window.setTimeout(function () { notice.hidden = true; }, NOTICE_MS);
  }

  function currentId() { return queue.length ? queue[current].id : null; }

  // ---- the queue ---------------------------------------------------------------------------
  function button(label, action, id) {
    var node = el("button", "secondary queue-action action-" + action, label);
    node.type = "button";
    node.setAttribute("data-action", action);
    node.setAttribute("data-id", String(id));
    return node;
  }

  function render() {
    if (current >= queue.length) { current = Math.max(queue.length - 1, 0); }
    list.textContent = "";
    queue.forEach(function (message, index) {
      var item = el("li", "queue-item");
      item.setAttribute("data-id", String(message.id));
      if (index === current) {
        item.classList.add("is-current");
        item.setAttribute("aria-current", "true");
      }
      if (selected[message.id]) { item.classList.add("is-selected"); }
      var head = el("p", "queue-meta");
      head.appendChild(el("span", "author", message.author));
      if (message.kind === "question") { head.appendChild(el("span", "kind", texts.question)); }
      if (selected[message.id]) { head.appendChild(el("span", "chosen", texts.selected)); }
      item.appendChild(head);
      item.appendChild(el("p", "queue-text", message.text));
      var actions = el("p", "queue-actions");
      actions.appendChild(button(texts.approve, "approve", message.id));
      actions.appendChild(button(texts.reject, "reject", message.id));
      actions.appendChild(button(texts.pin, "pin", message.id));
      actions.appendChild(button(texts.select, "select", message.id));
      item.appendChild(actions);
      list.appendChild(item);
    });
    empty.hidden = queue.length > 0;
    count.textContent = String(queue.length);
    var chosen = Object.keys(selected).length;
    batchCount.textContent = String(chosen);
    batchButton.hidden = chosen === 0;
    syncBanChoice();
  }

  function syncBanChoice() {
    if (!banChoice) { return; }
    var keep = currentId();
    banChoice.textContent = "";
    queue.forEach(function (message) {
      var option = el("option", "", message.author + ": " + message.text.slice(0, 30));
      option.value = String(message.id);
      banChoice.appendChild(option);
    });
    if (keep !== null) { banChoice.value = String(keep); }
  }

  function take(id) {
    gone[id] = true;
    delete selected[id];
    var keep = currentId();
    queue = queue.filter(function (message) { return message.id !== id; });
    // The cursor stays on the message it was on; the one decided is replaced by the next.
    var found = queue.findIndex(function (message) { return message.id === keep; });
    if (found >= 0) { current = found; }
    render();
  }

  function load() {
    return fetch("/api/events/" + eventId + "/comments?state=held&limit=200",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (held) {
        var keep = currentId();
        queue = held.filter(function (message) { return !gone[message.id]; });
        var ids = {};
        queue.forEach(function (message) { ids[message.id] = true; });
        Object.keys(selected).forEach(function (id) { if (!ids[id]) { delete selected[id]; } });
        var found = queue.findIndex(function (message) { return message.id === keep; });
        if (found >= 0) { current = found; }
        render();
      })
      .catch(function () { say(texts.offline, "warn"); });
  }

  // ---- the approved messages ---------------------------------------------------------------
  function loadApproved() {
    return fetch("/api/events/" + eventId + "/comments?after=" + lastSeq + "&limit=200",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (messages) {
        messages.forEach(function (message) {
          if (message.seq <= lastSeq) { return; }
          lastSeq = message.seq;
          var item = el("li", message.pinned ? "is-pinned" : "");
          item.setAttribute("data-seq", String(message.seq));
          item.appendChild(el("span", "seq", "#" + message.seq));
          item.appendChild(document.createTextNode(" "));
          item.appendChild(el("span", "author", message.author));
          item.appendChild(document.createTextNode(" "));
          item.appendChild(el("span", "approved-text", message.text));
          approvedList.appendChild(item);
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }

  // ---- decisions ---------------------------------------------------------------------------
  function post(id, action) {
    return fetch("/api/comments/" + id + "/moderation", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf},
      body: JSON.stringify({action: action})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return {status: response.status, body: body};
      });
    });
  }

  // Resolves true when the message was decided here.
  function decide(id, action) {
    if (id === null || gone[id]) { return Promise.resolve(false); }
    gone[id] = true;  // no second key press sends it twice
    return post(id, action === "pin" ? "approve" : action).then(function (answer) {
      if (answer.status === 409 && answer.body.error === "already_handled") {
        take(id);
        say(texts.already_handled, "warn");
        return false;
      }
      if (answer.status !== 200) {
        delete gone[id];
        say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
            "error");
        return false;
      }
      take(id);
      if (action === "pin") {
        return post(id, "pin").then(function (pinned) {
          say(pinned.status === 200 ? texts.pinned : texts.approved);
          return loadApproved().then(function () {
            // A refresh may have listed it between the approval and the pin.
            var item = approvedList.querySelector('[data-seq="' + answer.body.seq + '"]');
            if (item && pinned.status === 200) { item.classList.add("is-pinned"); }
            return true;
          });
        });
      }
      say(action === "approve" ? texts.approved : texts.rejected);
      if (action === "approve") { loadApproved(); }
      return true;
    }, function () {
      delete gone[id];
      say(texts.offline, "warn");
      return false;
    });
  }

  function approveSelected() {
    var ids = queue.filter(function (message) { return selected[message.id]; })
      .map(function (message) { return message.id; });
    if (!ids.length) { return; }
    var done = 0;
    // One after another, oldest first, so their seq follows the queue's order.
    ids.reduce(function (chain, id) {
      return chain.then(function () {
        return decide(id, "approve").then(function (ok) { if (ok) { done += 1; } });
      });
    }, Promise.resolve()).then(function () {
      say(texts.batch_done.replace("%(n)s", String(done)));
    });
  }

  function toggleSelected(id) {
    if (id === null) { return; }
    if (selected[id]) { delete selected[id]; } else { selected[id] = true; }
    render();
  }

  function move(step) {
    if (!queue.length) { return; }
    current = Math.min(Math.max(current + step, 0), queue.length - 1);
    render();
    var item = list.querySelector(".is-current");
    if (item && item.scrollIntoView) { item.scrollIntoView({block: "nearest"}); }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    var handled = true;
    switch (event.key) {
    case "j": case "ArrowDown": move(1); break;
    case "k": case "ArrowUp": move(-1); break;
    case "a": decide(currentId(), "approve"); break;
    case "r": decide(currentId(), "reject"); break;
    case "p": decide(currentId(), "pin"); break;
    case "x": toggleSelected(currentId()); break;
    case "A": approveSelected(); break;
    default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

  list.addEventListener("click", function (event) {
    var target = event.target;
    var action = target && target.getAttribute ? target.getAttribute("data-action") : null;
    if (action === "select") {
      toggleSelected(parseInt(target.getAttribute("data-id"), 10));
      return;
    }
    if (action) {
      decide(parseInt(target.getAttribute("data-id"), 10), action);
      return;
    }
    var item = target && target.closest ? target.closest(".queue-item") : null;
    if (item) {
      var id = parseInt(item.getAttribute("data-id"), 10);
      var index = queue.findIndex(function (message) { return message.id === id; });
      if (index >= 0) { current = index; render(); }
    }
  });
  batchButton.addEventListener("click", approveSelected);

  load();
  window.setInterval(function () {
    if (!document.hidden) { load(); loadApproved(); }
  }, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { load(); loadApproved(); }
  });
}());
