// The live room's comments (portal/room.html #live): one WebSocket (docs/live-protocol.md),
// open from the start and read-only until the viewer joins with a nickname (asked only to
// post), that shows the approved messages in seq order and sends the viewer's. Every change
// (a message, a take-down, a pin) carries the room's next position: a frame that is not the
// next one means something was lost, and the page re-reads from its own position (so it does
// every 15 s as well); it reconnects by itself from that position, so nothing is lost or
// doubled: after the delay the server names when it stops (1012), else with backoff and
// jitter, so that a whole audience does not come back in the same instant. The list itself (newest first in view, pins, older pages) is
// live_list.js's. Every text goes in as textContent: markup in a message shows as typed.
(function () {
  "use strict";
  var panel = document.getElementById("live");
  if (!panel || panel.dataset.open !== "1") return;

  var text = JSON.parse(panel.dataset.text);
  var eventId = panel.dataset.eventId;
  var maxText = parseInt(panel.dataset.max, 10);
  var lastPos = parseInt(panel.dataset.lastPos, 10) || 0; // the stream's, shown up to here
  var CHECK_MS = 15000; // the safety check: anything missed since lastPos?
  var PAGE = 200;
  var announce = panel.querySelector(".live-announce");
  var state = panel.querySelector(".live-state");
  var notice = panel.querySelector(".live-notice");
  var joinForm = panel.querySelector(".live-join");
  var sendForm = panel.querySelector(".live-send");
  if (!joinForm || !sendForm) return; // banned: the page says so, nothing to run
  var field = sendForm.querySelector("textarea");
  var counter = sendForm.querySelector(".live-count");
  var submit = sendForm.querySelector(".live-submit");
  var video = document.querySelector("video.player-video");
  var rule = panel.querySelector(".live-rule");
  // How many watch, under the title (the server counts every process's sockets).
  var watching = document.createElement("p");
  watching.className = "live-watching muted";
  watching.hidden = true;
  panel.querySelector("h2").insertAdjacentElement("afterend", watching);
  var room = window.KaifangLiveList(panel, text, eventId); // the messages (live_list.js)
  var token = ""; // from this page's join; after a reload the httponly cookie names the viewer
  var socket = null;
  var attempt = 0;
  var retry = 0; // the pending reconnection's timer
  var catching = false; // a re-read of the changes is under way
  var again = false; // and another is due after it
  var lastSent = ""; // an error answers the last frame sent: its text comes back to the field
  var announceTimer = 0;
  var FINAL = {4401: "closed4401", 4403: "closed4403", 4404: "closed4404"};
  var watchers = 0; // how many watch the room, as the last count said
  // A room's pages coming back at once are spread over this much per viewer (250 a second).
  var SPREAD_MS_PER_VIEWER = 4;
  var heldIds = {}; // this viewer's messages a host has yet to decide (their notice waits too)
  var waitTimer = 0;

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function showState(message) {
    state.textContent = message || "";
    state.hidden = !message;
  }

  function showNotice(message, isError) {
    window.clearInterval(waitTimer);
    notice.textContent = message;
    notice.classList.toggle("error", !!isError);
    notice.hidden = !message;
  }

  // One polite announcement for a burst: screen readers hear the latest message, not all.
  function announceLatest(message) {
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () {
      announce.textContent = message.author + "：" + message.text;
    }, 800);
  }

  // A message for the list; `quiet`: one of the room's last page (a reset), not news: no
  // announcement, no 弹幕, no button.
  function addComment(message, quiet) {
    decided(message.id, ""); // approved: no longer "waits for a host"
    if (!room.add(message, quiet) || quiet) return;
    announceLatest(message);
    // replay.js flies it over the video during a premiere.
    panel.dispatchEvent(new CustomEvent("live:comment", {detail: message}));
  }

  function removeComment(id) {
    decided(id, text.rejected);
    room.remove(id);
  }

  // A change of the room's stream (comment, removed, pinned), in the order of its position.
  function change(frame) {
    var pos = frame.pos;
    if (typeof pos === "number") {
      if (frame.type === "comment" && pos <= lastPos) { // the room's last page (a reset)
        addComment(frame, true);
        return;
      }
      if (pos <= lastPos) return; // shown already
      if (pos !== lastPos + 1) { catchUp(); return; } // something was lost: read from ours
      lastPos = pos;
    }
    if (frame.type === "comment") addComment(frame);
    else if (frame.type === "removed") removeComment(frame.id);
    else if (frame.type === "pinned") room.pin(frame.id, frame.pinned !== false);
  }

  // Re-reads the changes after the page's own position, a page at a time.
  function catchUp() {
    if (catching) { again = true; return; }
    catching = true;
    var full = false;
    fetch("/api/events/" + eventId + "/changes?after=" + lastPos + "&limit=" + PAGE,
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (changes) {
        if (!changes) return;
        changes.frames.forEach(function (frame) { if (frame.pos === lastPos + 1) change(frame); });
        full = changes.frames.length === PAGE;
      })
      .catch(function () { /* the next check tries again */ })
      .then(function () {
        catching = false;
        if (again || full) { again = false; catchUp(); }
      });
  }

  // A host closed or reopened the room, set slow mode or switched moderation.
  function showRules(rules) {
    if (rule) rule.textContent = rules.moderation === "pre" ? text.rulePre : text.rulePost;
    sendForm.hidden = !rules.open || !joinForm.hidden;
    if (!rules.open) {
      showNotice(text.closed, false);
    } else if (rules.slow_mode_s > 0) {
      showNotice(fill(text.slow, {seconds: rules.slow_mode_s}), false);
    } else if (notice.textContent === text.closed || notice.dataset.slow === "1") {
      showNotice("", false);
    }
    notice.dataset.slow = rules.open && rules.slow_mode_s > 0 ? "1" : "0";
  }

  function setReady(ready) {
    submit.disabled = !ready;
  }

  // This browser's random id: the session's distinct viewers are counted by it (no account,
  // nothing personal), kept so a reload is the same viewer.
  function watchId() {
    var id = "";
    try { id = window.localStorage.getItem("kaifang_watch") || ""; } catch (e) { id = ""; }
    if (!/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
      try { window.localStorage.setItem("kaifang_watch", id); } catch (e) { /* private mode: this page only */ }
    }
    return id;
  }

  function url() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    // From the page's own position: every change since comes, in order.
    var query = "after=" + room.lastSeq() + "&pos=" + lastPos + "&watch=" + watchId() +
      (token ? "&token=" + encodeURIComponent(token) : "");
    return scheme + window.location.host + "/ws/events/" + eventId + "?" + query;
  }

  function reconnect() {
    retry = 0;
    connect();
  }

  function connect() {
    showState(attempt ? text.reconnecting : text.connecting);
    setReady(false);
    var ws = new WebSocket(url());
    socket = ws;
    ws.addEventListener("message", function (event) {
      if (ws !== socket) return; // one this page has left
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      // The questions panel (questions.js) reads the same frames.
      document.dispatchEvent(new CustomEvent("kaifang:room-frame", {detail: frame}));
      if (frame.type === "hello") {
        attempt = 0;
        showState("");
        setReady(true);
        if (frame.reset) { // too far behind (or new): the room's last page follows
          room.reset(frame.first_seq);
          lastPos = frame.last_pos;
        }
        room.pinOnly(frame.pinned);
        if (frame.viewer === null && joinForm.hidden) {
          // The pass went out of date since the page was made: watch, and ask for a nickname.
          sendForm.hidden = true;
          joinForm.hidden = false;
        }
        if (!frame.open || frame.slow_mode_s > 0) showRules(frame);
      } else if (frame.type === "comment" || frame.type === "removed" ||
                 frame.type === "pinned") {
        change(frame);
      } else if (frame.type === "held") {
        lastSent = "";
        heldIds[frame.id] = true;
        showNotice(text.held, false);
      } else if (frame.type === "room") {
        showRules(frame);
      } else if (frame.type === "viewers") {
        watchers = frame.count;
        watching.textContent = fill(text.watching, {count: frame.count});
        watching.hidden = false;
      } else if (frame.type === "error") {
        if (frame.code === "rate_limited" && frame.retry_after_s > 0) {
          waitFor(frame.retry_after_s);
        } else {
          showNotice(text[frame.code] || text.bad_message, true);
        }
        restore();
      }
    });
    ws.addEventListener("close", function (event) {
      if (ws !== socket) return;
      socket = null;
      setReady(false);
      if (event.code === 4401 && token) {
        // The pass this page joined with is no longer valid: watch, and ask for a nickname.
        token = "";
        showNotice(text[FINAL[event.code]], true);
        sendForm.hidden = true;
        joinForm.hidden = false;
      } else if (FINAL[event.code]) {
        // The server will not take this viewer: trying again would not help. Say why; a pass
        // that is no longer valid (or another room's cookie) can be replaced by joining again.
        showState("");
        showNotice(text[FINAL[event.code]], true);
        sendForm.hidden = true;
        joinForm.hidden = event.code !== 4401;
        return;
      }
      showState(text.reconnecting);
      retry = window.setTimeout(reconnect, reconnectDelay(event));
    });
  }

  // How long to wait before reconnecting. A server that stops (1012, service restart) names a
  // delay of this page's own; otherwise (a crash, the network) 1 s doubling to 30 s, and at
  // least the room's spread (every page of a crashed server loses it at the same moment),
  // each wait anywhere below that so the pages do not march.
  function reconnectDelay(event) {
    attempt += 1;
    if (event.code === 1012 && attempt === 1) {
      var named = null;
      try { named = JSON.parse(event.reason || "null"); } catch (e) { named = null; }
      if (named && typeof named.retry_ms === "number" && named.retry_ms >= 0) {
        return Math.min(named.retry_ms, 60000);
      }
    }
    var ceiling = Math.min(30000, Math.max(1000 * Math.pow(2, attempt - 1),
                                           watchers * SPREAD_MS_PER_VIEWER));
    return Math.random() * ceiling;
  }

  // A host decided on one of this viewer's held messages: "waits for a host" goes (approved:
  // it is in the list now) or says it was not published.
  function decided(id, saying) {
    if (!heldIds[id]) return;
    delete heldIds[id];
    if (notice.textContent !== text.held) return;
    showNotice(Object.keys(heldIds).length ? text.held : saying, false);
  }

  // Too soon (slow mode, or two messages within 2 s): how long to wait, counted down.
  function waitFor(seconds) {
    var until = Date.now() + seconds * 1000;
    function tick() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) { showNotice("", false); return; }
      notice.textContent = fill(text.wait, {seconds: left});
    }
    showNotice(fill(text.wait, {seconds: seconds}), true);
    waitTimer = window.setInterval(tick, 1000);
  }

  // A refused message comes back to the field, unless the viewer has typed on.
  function restore() {
    if (lastSent && !field.value) { field.value = lastSent; count(); }
    lastSent = "";
  }

  function count() {
    counter.textContent = fill(text.count, {count: field.value.length, max: maxText});
  }

  // Joined: the socket comes back with the viewer's pass (it only watched until now).
  function start(nickname) {
    joinForm.hidden = true;
    sendForm.hidden = false;
    if (nickname) sendForm.querySelector(".live-nickname").textContent = nickname;
    attempt = 0;
    var old = socket;
    socket = null;
    if (old) old.close();
    if (retry) { window.clearTimeout(retry); retry = 0; }
    connect();
  }

  joinForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var input = joinForm.querySelector("input");
    var button = joinForm.querySelector("button");
    button.disabled = true;
    var asked = {nickname: input.value.trim()};
    fetch("/api/events/" + eventId + "/viewers", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(asked)
    }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }).then(function (joined) {
      token = joined.viewer_token;
      showNotice("", false);
      start(joined.nickname);
      document.dispatchEvent(new CustomEvent("kaifang:joined", {
        detail: {nickname: joined.nickname, from: "chat"}}));
      field.focus();
    }).catch(function () {
      showNotice(text.joinFailed, true);
      input.focus();
    }).then(function () { button.disabled = false; });
  });

  sendForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var words = field.value.trim();
    if (!words || !socket || socket.readyState !== WebSocket.OPEN) return;
    var clientId = "m" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    var frame = {type: sendForm.querySelector("input[name=kind]:checked").value,
                 text: words, client_id: clientId};
    // The moment of the video it answers; none while the video is not playing (a time of 0:00
    // would replay it at the start).
    if (video && !video.paused && !video.ended && video.currentTime > 0) {
      frame.video_time = video.currentTime;
    }
    lastSent = words;
    socket.send(JSON.stringify(frame));
    showNotice("", false);
    field.value = "";
    count();
  });

  field.addEventListener("input", count);
  // Ctrl+Enter (⌘+Enter) sends; Enter alone is a new line.
  field.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendForm.requestSubmit();
    }
  });
  // The network is back: no need to sit out the rest of the backoff.
  window.addEventListener("online", function () {
    if (retry) { window.clearTimeout(retry); reconnect(); }
  });
  // One viewer for the page: a join in the questions panel (its cookie) starts the chat too.
  document.addEventListener("kaifang:joined", function (event) {
    if (event.detail && event.detail.from !== "chat" && !joinForm.hidden) {
      start(event.detail.nickname);
    }
  });
  window.setInterval(function () { if (!document.hidden) catchUp(); }, CHECK_MS);
  count();
  if (joinForm.dataset.done === "1") {
    start("");
  } else {
    joinForm.hidden = false;
    connect(); // watching needs no nickname
  }
}());
