/* The host's moderation console. The queue, the approved messages (moderation_approved.js), the
   room's rules and the viewer count (moderation_room.js) follow the hosts' socket
   (/ws/events/{id}/host), which this file opens and hands on as "kaifang:room-frame" events: a
   message held on any process joins the queue at once, and one another host decided leaves it
   at once (`decided`). While the socket is down the page polls the JSON API every 2 s and
   reconnects with backoff. Shared helpers: moderation_common.js.
   Keys: j/k or ↓/↑, a, r, p, c (reply), x then A; buttons do the same. Every message's words are
   set as text, never as HTML. Without this file the page still shows the queue and works by
   forms. */
(function () {
  "use strict";
  var k = window.kaifangModeration;
  if (!k) { return; }
  var eventId = k.eventId, texts = k.texts, el = k.el, say = k.say,
    request = k.request, button = k.button, replyBox = k.replyBox, post = k.post;
  var approved = k.approved;
  var list = document.getElementById("queue");
  var empty = document.getElementById("queue-empty");
  var count = document.getElementById("queue-count");
  var approvedList = document.getElementById("approved");
  var batchButton = document.getElementById("batch-approve");
  var batchCount = document.getElementById("batch-count");
  var banChoice = document.getElementById("ban-message");
  var socketState = document.getElementById("socket-state");
  var POLL_MS = 2000;
  var SAFETY_POLL_MS = 15000;  // with the socket up: a slow check that nothing was missed

  var queue = [];          // held messages, oldest first
  var current = 0;         // index of the message the keys act on
  var selected = {};       // id → true: chosen for batch approval
  var gone = {};           // id → true: decided here or by another host; never shown again
  var replyingTo = null;   // the id whose reply box is open
  var socket = null;
  var live = false;
  var backoff = 1000;
  var lastPoll = 0;

  function currentId() { return queue.length ? queue[current].id : null; }

  // ---- the queue ---------------------------------------------------------------------------
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

  // ---- decisions ---------------------------------------------------------------------------
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
      if (action === "approve" || action === "pin") { approved.show(answer.body); }
      if (action === "pin") {
        return post(id, "pin").then(function (pinned) {
          if (pinned.status === 200) { approved.markPinned(id, true); }
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
      approved.load();
    }, function () {
      delete gone[id];
      say(texts.offline, "warn");
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
                           "/host?after=" + approved.shownUpTo());
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      // The questions panel (questions_console.js) reads the same socket's frames.
      document.dispatchEvent(new CustomEvent("kaifang:room-frame", {detail: frame}));
      if (frame.type === "hello") {
        setLive(true);
        backoff = 1000;
        load();  // what was held before the socket opened
      } else if (frame.type === "resync") {
        load();  // Redis is back: what other processes held or decided meanwhile
      } else if (frame.type === "queued") {
        enqueue(frame.message);
      } else if (frame.type === "decided") {
        take(frame.id);
      } else if (frame.type === "comment") {
        approved.show(frame);
      } else if (frame.type === "removed") {
        approved.markRemoved(frame.id);
      } else if (frame.type === "pinned") {
        approved.markPinned(frame.id, frame.pinned !== false);
      }
    };
    socket.onclose = function (event) {
      setLive(false);
      socket = null;
      if (event.code >= 4400 && event.code < 4500) { return; }  // refused: polling only
      // A server that stops (1012) names a delay; else the backoff, with jitter.
      var named = null;
      try { named = JSON.parse(event.reason || "null"); } catch (error) { named = null; }
      var wait = named && typeof named.retry_ms === "number" && named.retry_ms >= 0
        ? Math.min(named.retry_ms, 60000) : backoff / 2 + Math.random() * backoff / 2;
      window.setTimeout(connect, wait);
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
  batchButton.addEventListener("click", approveSelected);

  k.approvedChanged = syncBanChoice;
  load();
  connect();
  window.setInterval(function () {
    if (document.hidden) { return; }
    if (!live || Date.now() - lastPoll >= SAFETY_POLL_MS) { load(); approved.load(); }
  }, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { load(); approved.load(); }
  });
}());
