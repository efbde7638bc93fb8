/* The host's moderation console. The queue, the approved messages, the room's rules and the
   viewer count follow the hosts' socket (/ws/events/{id}/host): a message held on any process
   joins the queue at once, and one another host decided leaves it at once (`decided`). While the
   socket is down the page polls the JSON API every 2 s and reconnects with backoff.
   Keys: j/k or ↓/↑, a, r, p, c (reply), x then A; buttons do the same. Every message's words are
   set as text, never as HTML. Without this file the page still shows the queue and works by
   forms. */
(function () {
  "use strict";
  var root = document.getElementById("moderation");
  if (!root || !window.fetch || !window.JSON) { return; }

  var eventId = root.getAttribute("data-event-id");
  // The longest reply the room takes (streaming.texts.MAX_TEXT), as the page says it.
  var maxText = parseInt(root.getAttribute("data-max-text"), 10) || 0;
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
  var socketState = document.getElementById("socket-state");
  var viewerCount = document.getElementById("viewer-count");
  var roomForm = document.getElementById("room-form");
  var roomState = document.getElementById("room-state");
  var POLL_MS = 2000;
  var SAFETY_POLL_MS = 15000;  // with the socket up: a slow check that nothing was missed
  var NOTICE_MS = 4000;

  var queue = [];          // held messages, oldest first
  var current = 0;         // index of the message the keys act on
  var selected = {};       // id → true: chosen for batch approval
  var gone = {};           // id → true: decided here or by another host; never shown again
  var replyingTo = null;   // the id whose reply box is open
  var noticeTimer = null;
  var socket = null;
  var live = false;
  var backoff = 1000;
  var lastPoll = 0;

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

  function request(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return {status: response.status, body: answer};
      });
    });
  }

  // ---- the queue ---------------------------------------------------------------------------
  function button(label, action, id) {
    var node = el("button", "secondary queue-action action-" + action, label);
    node.type = "button";
    node.setAttribute("data-action", action);
    node.setAttribute("data-id", String(id));
    return node;
  }

  // A reply form: Enter (or its button) calls send(text), Esc (or Cancel) calls cancel().
  function replyBox(fieldId, author, send, cancel) {
    var form = el("form", "reply-box");
    var label = el("label", "", texts.reply_label.replace("%(author)s", author));
    var area = el("textarea", "reply-text");
    area.id = fieldId;
    if (maxText) { area.maxLength = maxText; }
    area.rows = 2;
    label.htmlFor = area.id;
    var submit = el("button", "", texts.send_reply);
    submit.type = "submit";
    var back = el("button", "secondary", texts.cancel);
    back.type = "button";
    back.addEventListener("click", cancel);
    form.appendChild(label);
    form.appendChild(area);
    var row = el("p", "queue-actions");
    row.appendChild(submit);
    row.appendChild(back);
    form.appendChild(row);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (area.value.trim()) { send(area.value); }
    });
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        if (area.value.trim()) { send(area.value); }
      } else if (event.key === "Escape") {
        event.preventDefault();
        cancel();
      }
    });
    return form;
  }

  function render() {
    if (current >= queue.length) { current = Math.max(queue.length - 1, 0); }
    var typing = replyingTo !== null ? document.getElementById("reply-" + replyingTo) : null;
    var draft = typing ? typing.value : "";
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
      if (message.registered) { head.appendChild(el("span", "kind", texts.registered)); }
      if (message.kind === "question") { head.appendChild(el("span", "kind", texts.question)); }
      if (selected[message.id]) { head.appendChild(el("span", "chosen", texts.selected)); }
      item.appendChild(head);
      item.appendChild(el("p", "queue-text", message.text));
      var actions = el("p", "queue-actions");
      actions.appendChild(button(texts.approve, "approve", message.id));
      actions.appendChild(button(texts.reject, "reject", message.id));
      actions.appendChild(button(texts.pin, "pin", message.id));
      actions.appendChild(button(texts.reply, "reply", message.id));
      actions.appendChild(button(texts.select, "select", message.id));
      item.appendChild(actions);
      if (replyingTo === message.id) {
        item.appendChild(replyBox("reply-" + message.id, message.author,
                                  function (text) { sendReply(message.id, text); }, closeReply));
      }
      list.appendChild(item);
    });
    if (replyingTo !== null) {
      var area = document.getElementById("reply-" + replyingTo);
      if (area) {
        area.value = draft;
        area.focus();
      } else {
        replyingTo = null;  // its message left the queue
      }
    }
    empty.hidden = queue.length > 0;
    count.textContent = String(queue.length);
    var chosen = Object.keys(selected).length;
    batchCount.textContent = String(chosen);
    batchButton.hidden = chosen === 0;
    syncBanChoice();
  }

  // The ban form's choice: the held messages, then the approved ones, newest first (a host may
  // ban from any message); the one chosen stays chosen (moderation_bans.js chooses it).
  function syncBanChoice() {
    if (!banChoice) { return; }
    var keep = banChoice.value;
    banChoice.textContent = "";
    function add(id, author, words) {
      var option = el("option", "", author + ": " + words.slice(0, 30));
      option.value = String(id);
      banChoice.appendChild(option);
    }
    queue.forEach(function (message) { add(message.id, message.author, message.text); });
    var shown = approvedList.querySelectorAll("li[data-id]:not(.is-removed):not(.is-reply)");
    Array.prototype.slice.call(shown).reverse().forEach(function (item) {
      var author = item.querySelector(".author");
      var words = item.querySelector(".approved-text");
      add(item.getAttribute("data-id"), author ? author.textContent : "",
          words ? words.textContent : "");
    });
    var onCursor = currentId();
    if (keep && banChoice.querySelector('option[value="' + keep + '"]')) {
      banChoice.value = keep;
    } else if (onCursor !== null) {
      banChoice.value = String(onCursor);
    }
  }

  function take(id) {
    gone[id] = true;
    delete selected[id];
    if (replyingTo === id) { replyingTo = null; }
    var keep = currentId();
    var before = queue.length;
    queue = queue.filter(function (message) { return message.id !== id; });
    if (queue.length === before) { return; }
    // The cursor stays on the message it was on; the one decided is replaced by the next.
    var found = queue.findIndex(function (message) { return message.id === keep; });
    if (found >= 0) { current = found; }
    render();
  }

  function enqueue(message) {
    if (gone[message.id]) { return; }
    if (queue.some(function (known) { return known.id === message.id; })) { return; }
    queue.push(message);
    queue.sort(function (a, b) { return a.id - b.id; });
    render();
  }

  function load() {
    lastPoll = Date.now();
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
  function approvedItem(id) {
    return approvedList.querySelector('[data-id="' + String(parseInt(id, 10)) + '"]');
  }

  // In seq order, once each, whether the socket, a poll or a decision's answer brings it first.
  function showApproved(message) {
    if (!message.seq || approvedList.querySelector('[data-seq="' + message.seq + '"]')) {
      return;
    }
    var item = el("li", (message.pinned ? "is-pinned" : "") +
                  (message.kind === "reply" ? " is-reply" : ""));
    item.setAttribute("data-seq", String(message.seq));
    item.setAttribute("data-id", String(message.id));
    item.appendChild(el("span", "seq", "#" + message.seq));
    item.appendChild(document.createTextNode(" "));
    if (message.kind === "reply") {
      item.appendChild(el("span", "official", texts.official));
      item.appendChild(document.createTextNode(" "));
    }
    item.appendChild(el("span", "author", message.author));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(el("span", "approved-text", message.text));
    decorate(item);
    var later = Array.prototype.find.call(approvedList.children, function (other) {
      return parseInt(other.getAttribute("data-seq"), 10) > message.seq;
    });
    approvedList.insertBefore(item, later || null);
    syncBanChoice();
  }

  // Pin or unpin, and reply, on an approved message (not on a reply).
  function decorate(item) {
    if (item.classList.contains("is-reply") || item.classList.contains("is-removed")) { return; }
    var old = item.querySelector(".approved-actions");
    if (old) { old.remove(); }
    var id = item.getAttribute("data-id");
    var pinned = item.classList.contains("is-pinned");
    var actions = el("span", "approved-actions");
    actions.appendChild(button(pinned ? texts.unpin : texts.pin,
                               pinned ? "unpin" : "pin-approved", id));
    actions.appendChild(button(texts.reply, "reply-approved", id));
    actions.appendChild(button(texts.remove, "remove-approved", id));
    item.appendChild(actions);
  }

  function markPinned(id, pinned) {
    var item = approvedItem(id);
    if (!item) { return; }
    item.classList.toggle("is-pinned", pinned);
    decorate(item);
  }

  function markRemoved(id) {
    var item = approvedItem(id);
    if (!item) { return; }
    item.classList.add("is-removed");
    item.classList.remove("is-pinned");
    var old = item.querySelector(".approved-actions");
    if (old) { old.remove(); }
    item.appendChild(el("span", "removed-note", texts.removed));
    syncBanChoice();
  }

  // The seq up to which the list has no gap (a decision's answer may bring a later one first).
  function shownUpTo() {
    var upTo = 0;
    Array.prototype.some.call(approvedList.children, function (item) {
      var seq = parseInt(item.getAttribute("data-seq"), 10);
      if (upTo && seq !== upTo + 1) { return true; }
      upTo = seq;
      return false;
    });
    return upTo;
  }

  function loadApproved() {
    return fetch("/api/events/" + eventId + "/comments?after=" + shownUpTo() + "&limit=200",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (messages) { messages.forEach(showApproved); })
      .catch(function () { /* the next poll tries again */ });
  }

  // ---- decisions ---------------------------------------------------------------------------
  function post(id, action) {
    return request("POST", "/api/comments/" + id + "/moderation", {action: action});
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
      if (action === "approve" || action === "pin") { showApproved(answer.body); }
      if (action === "pin") {
        return post(id, "pin").then(function (pinned) {
          if (pinned.status === 200) { markPinned(id, true); }
          say(pinned.status === 200 ? texts.pinned : texts.approved);
          return true;
        });
      }
      say(action === "approve" ? texts.approved : texts.rejected);
      return true;
    }, function () {
      delete gone[id];
      say(texts.offline, "warn");
      return false;
    });
  }

  function pinApproved(id, pin) {
    post(id, pin ? "pin" : "unpin").then(function (answer) {
      if (answer.status === 200) {
        markPinned(id, pin);
        say(pin ? texts.pinned_only : texts.unpinned);
      } else {
        say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
            "error");
      }
    });
  }

  function openReply(id) {
    if (id === null) { return; }
    var index = queue.findIndex(function (message) { return message.id === id; });
    if (index < 0) { return; }
    current = index;
    replyingTo = id;
    render();
  }

  function closeReply() {
    replyingTo = null;
    render();
  }

  function sendReply(id, text) {
    gone[id] = true;  // approved with its reply: it leaves the queue
    request("POST", "/api/comments/" + id + "/replies", {text: text}).then(function (answer) {
      if (answer.status !== 201) {
        if (answer.status !== 409) { delete gone[id]; }
        say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
            "error");
        if (answer.status === 409) { take(id); }
        return;
      }
      replyingTo = null;
      take(id);
      render();
      say(texts.replied);
      loadApproved();
    }, function () {
      delete gone[id];
      say(texts.offline, "warn");
    });
  }

  // A reply to an approved message: a box under it in the approved list.
  function replyToApproved(id) {
    var item = approvedItem(id);
    if (!item || item.querySelector(".reply-box")) { return; }
    var author = item.querySelector(".author");
    var box = replyBox("reply-approved-" + id, author ? author.textContent : "", function (text) {
      request("POST", "/api/comments/" + id + "/replies", {text: text}).then(function (answer) {
        if (answer.status === 201) {
          box.remove();
          say(texts.replied);
          loadApproved();
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    }, function () { box.remove(); });
    item.appendChild(box);
    box.querySelector("textarea").focus();
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

  // ---- the room's rules --------------------------------------------------------------------
  function showRules(rules) {
    roomState.textContent = rules.closed ? texts.closed : rules.open ? texts.open : texts.not_yet;
    roomState.classList.toggle("is-closed", !!rules.closed);
    var toggle = document.getElementById("room-toggle");
    if (toggle) {
      toggle.textContent = rules.closed ? texts.reopen : texts.close;
      toggle.value = rules.closed ? "0" : "1";
      toggle.className = rules.closed ? "" : "danger";
    }
    var radio = roomForm.querySelector('input[name="moderation"][value="' + rules.moderation +
                                       '"]');
    if (radio) { radio.checked = true; }
    var slow = roomForm.querySelector('select[name="slow_mode_s"]');
    if (slow) { slow.value = String(rules.slow_mode_s); }
  }

  if (roomForm) {
    roomForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      var chosen = roomForm.querySelector('input[name="moderation"]:checked');
      if (chosen) { body.moderation = chosen.value; }
      body.slow_mode_s = parseInt(roomForm.querySelector('select[name="slow_mode_s"]').value, 10);
      var submitter = event.submitter;
      if (submitter && submitter.name === "closed") { body.closed = submitter.value === "1"; }
      request("PUT", "/api/events/" + eventId + "/room", body).then(function (answer) {
        if (answer.status === 200) {
          showRules(answer.body);
          say(texts.saved);
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    });
  }

  // ---- the hosts' socket -------------------------------------------------------------------
  function setLive(on) {
    live = on;
    if (socketState) {
      socketState.textContent = on ? texts.live : texts.polling;
      socketState.setAttribute("data-live", on ? "1" : "0");
    }
  }

  function connect() {
    if (!window.WebSocket) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/events/" + eventId +
                           "/host?after=" + shownUpTo());
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      // The questions panel (questions_console.js) reads the same socket's frames.
      document.dispatchEvent(new CustomEvent("kaifang:room-frame", {detail: frame}));
      if (frame.type === "hello") {
        setLive(true);
        backoff = 1000;
        showRules(frame);
        load();  // what was held before the socket opened
      } else if (frame.type === "queued") {
        enqueue(frame.message);
      } else if (frame.type === "decided") {
        take(frame.id);
      } else if (frame.type === "comment") {
        showApproved(frame);
      } else if (frame.type === "removed") {
        markRemoved(frame.id);
      } else if (frame.type === "pinned") {
        markPinned(frame.id, frame.pinned !== false);
      } else if (frame.type === "viewers") {
        viewerCount.textContent = String(frame.count);
      } else if (frame.type === "room") {
        showRules(frame);
      }
    };
    socket.onclose = function (event) {
      setLive(false);
      socket = null;
      if (event.code >= 4400 && event.code < 4500) { return; }  // refused: polling only
      window.setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  // ---- keys and clicks ---------------------------------------------------------------------
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
    case "c": openReply(currentId()); break;
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
    if (action === "reply") {
      openReply(parseInt(target.getAttribute("data-id"), 10));
      return;
    }
    if (action) {
      decide(parseInt(target.getAttribute("data-id"), 10), action);
      return;
    }
    var item = target && target.closest ? target.closest(".queue-item") : null;
    if (item && !(target.closest && target.closest(".reply-box"))) {
      var id = parseInt(item.getAttribute("data-id"), 10);
      var index = queue.findIndex(function (message) { return message.id === id; });
      if (index >= 0 && index !== current) { current = index; render(); }
    }
  });
  approvedList.addEventListener("click", function (event) {
    var target = event.target;
    var action = target && target.getAttribute ? target.getAttribute("data-action") : null;
    var id = target && target.getAttribute ? target.getAttribute("data-id") : null;
    if (action === "pin-approved") { pinApproved(id, true); }
    else if (action === "unpin") { pinApproved(id, false); }
    else if (action === "reply-approved") { replyToApproved(id); }
    else if (action === "remove-approved") {
      post(id, "reject").then(function (answer) {
        if (answer.status === 200) {
          markRemoved(id);
          say(texts.removed);
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    }
  });
  batchButton.addEventListener("click", approveSelected);

  Array.prototype.forEach.call(approvedList.querySelectorAll("li[data-id]"), decorate);
  load();
  connect();
  window.setInterval(function () {
    if (document.hidden) { return; }
    if (!live || Date.now() - lastPoll >= SAFETY_POLL_MS) { load(); loadApproved(); }
  }, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { load(); loadApproved(); }
  });
}());
