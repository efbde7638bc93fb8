// Comments over the video (portal/room.html, portal/_player.html). After the session every
// approved message comes back at its video_time: as 弹幕 flying over the picture (one button turns
// them off, remembered on this device) and in the side list (#live), which marks what the video
// has reached, keeps the latest in view and seeks the video when a time is pressed. During a
// premiere the overlay shows the live messages live.js receives. Text goes in as textContent.
(function () {
  "use strict";
  var player = document.querySelector(".player");
  var panel = document.getElementById("live");
  if (!player || !panel) return;
  var video = player.querySelector(".player-video");
  var overlay = player.querySelector(".player-danmaku");
  var toggle = player.querySelector(".player-danmaku-toggle");
  if (!video || !overlay || !toggle) return;

  var STORE_KEY = "kaifang.danmaku";
  var MAX_LANES = 6;
  var MAX_ON_SCREEN = 12;
  var CROSSING_S = 7; // how long a message takes to cross the frame
  var STILL_MS = 4000; // how long one stays when motion is reduced
  var GAP_PX = 32; // between two messages of a lane
  var CATCH_UP_S = 2; // after a seek, the messages of the last 2 s fly, not every one skipped
  var reduced = window.matchMedia("(prefers-reduced-motion: reduce)");

  // ---- the overlay ------------------------------------------------------------------------
  var on = false;
  var lanes = []; // per lane, when (performance.now()) it has room for the next message
  var pausedAt = 0;

  function stored() {
    try { return window.localStorage.getItem(STORE_KEY); } catch (e) { return null; }
  }

  function remember(value) {
    try { window.localStorage.setItem(STORE_KEY, value ? "on" : "off"); } catch (e) { /* private mode */ }
  }

  function clear() {
    overlay.textContent = "";
    lanes = [];
  }

  function setOn(value) {
    on = value;
    toggle.setAttribute("aria-pressed", value ? "true" : "false");
    overlay.hidden = !value;
    if (!value) clear();
  }

  function freeLane(count, now) {
    for (var i = 0; i < count; i++) {
      if (!(lanes[i] > now)) return i;
    }
    return -1;
  }

  // One message over the picture, in the first lane with room; when every lane is busy (a
  // burst) it is left out rather than piled on another.
  function fly(message) {
    if (!on || overlay.childElementCount >= MAX_ON_SCREEN) return;
    var item = document.createElement("span");
    item.className = "danmaku-item";
    item.textContent = message.text;
    overlay.appendChild(item);
    var now = performance.now();
    var laneHeight = item.offsetHeight + 4;
    var count = Math.max(1, Math.min(MAX_LANES, Math.floor(overlay.clientHeight / laneHeight)));
    var lane = freeLane(count, now);
    if (lane < 0) {
      overlay.removeChild(item);
      return;
    }
    item.style.top = (lane * laneHeight + 4) + "px";
    var duration;
    if (reduced.matches) {
      duration = STILL_MS;
      lanes[lane] = now + duration;
    } else {
      var width = overlay.clientWidth;
      var own = item.offsetWidth;
      var speed = width / CROSSING_S; // pixels a second, the same for every message: no catching up
      duration = (width + own) / speed * 1000;
      lanes[lane] = now + (own + GAP_PX) / speed * 1000;
      item.style.setProperty("--distance", -(width + own) + "px");
    }
    item.style.animationDuration = Math.round(duration) + "ms";
    item.classList.add("is-shown"); // the animation starts once its lane and pace are set
    item.addEventListener("animationend", function () {
      if (item.parentNode) item.parentNode.removeChild(item);
    });
  }

  // The overlay stops with the video, and its lanes' clocks with it.
  video.addEventListener("pause", function () {
    overlay.classList.add("is-paused");
    pausedAt = performance.now();
  });
  video.addEventListener("play", function () {
    overlay.classList.remove("is-paused");
    if (pausedAt) {
      var stopped = performance.now() - pausedAt;
      lanes = lanes.map(function (at) { return at + stopped; });
      pausedAt = 0;
    }
  });
  if (video.paused) {
    overlay.classList.add("is-paused");
    pausedAt = performance.now();
  }

  toggle.addEventListener("click", function () {
    setOn(!on);
    remember(on);
  });
  var choice = stored();
  setOn(choice ? choice === "on" : !reduced.matches); // off unless asked for when motion is reduced
  toggle.hidden = false;

  if (panel.dataset.replay !== "1") {
    // A premiere: live.js announces each new message; it flies as it comes.
    panel.addEventListener("live:comment", function (event) {
      if (!video.paused) fly(event.detail);
    });
    return;
  }

  // ---- the replay -------------------------------------------------------------------------
  var text = JSON.parse(panel.dataset.replayText || "{}");
  var list = panel.querySelector(".live-list");
  var PAGE = 500;
  var timed = []; // the messages with a video_time, in the order of the video
  var items = []; // their list items, in the same order
  var next = 0; // the first of `timed` the video has not reached
  var reached = 0; // how many list items are marked reached
  var current = null;
  var touchedAt = 0; // when the viewer last scrolled the list: it does not follow for a while

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function item(message) {
    var li = document.createElement("li");
    li.className = "live-item" + (message.pinned ? " live-pinned" : "") +
      (message.kind === "reply" ? " live-reply" : "");
    li.dataset.id = message.id;
    li.dataset.seq = message.seq;
    if (typeof message.video_time === "number") {
      var seek = document.createElement("button");
      seek.type = "button";
      seek.className = "replay-time replay-seek";
      seek.dataset.time = String(message.video_time);
      seek.textContent = clock(message.video_time);
      seek.setAttribute("aria-label", fill(text.seek, {time: clock(message.video_time)}));
      li.appendChild(seek);
    }
    var author = document.createElement("span");
    author.className = "live-author";
    author.textContent = message.author;
    li.appendChild(author);
    if (message.kind === "question") {
      var kind = document.createElement("span");
      kind.className = "live-kind";
      kind.textContent = text.question;
      li.appendChild(document.createTextNode(" "));
      li.appendChild(kind);
    }
    var body = document.createElement("p");
    body.className = "live-text";
    body.textContent = message.text;
    li.appendChild(body);
    return li;
  }

  function load(after, found) {
    return fetch(panel.dataset.commentsUrl + "?after=" + after + "&limit=" + PAGE,
                 {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (page) {
        found = found.concat(page);
        return page.length === PAGE ? load(page[page.length - 1].seq, found) : found;
      });
  }

  // The first of `timed` at or after `seconds` (after it, when `past` is true).
  function indexAt(seconds, past) {
    var low = 0, high = timed.length;
    while (low < high) {
      var middle = (low + high) >> 1;
      var at = timed[middle].video_time;
      if (at < seconds || (past && at === seconds)) low = middle + 1; else high = middle;
    }
    return low;
  }

  // Keeps the latest reached message in the list's view, unless the viewer is reading the list
  // (scrolled it lately, or moved into it with the keyboard). The page itself does not move.
  function follow(li) {
    var focused = document.activeElement;
    if (Date.now() - touchedAt < 5000) return;
    if (focused && list.contains(focused) && focused.matches(":focus-visible")) return;
    var box = list.getBoundingClientRect(), own = li.getBoundingClientRect();
    if (own.top >= box.top && own.bottom <= box.bottom) return;
    var top = list.scrollTop + own.top - box.top - (list.clientHeight - own.height) / 2;
    list.scrollTo({top: Math.max(0, top), behavior: reduced.matches ? "auto" : "smooth"});
  }

  function mark(seconds) {
    var count = indexAt(seconds, true);
    for (var i = Math.min(count, reached); i < Math.max(count, reached); i++) {
      items[i].classList.toggle("replay-reached", i < count);
    }
    reached = count;
    var latest = count ? items[count - 1] : null;
    if (latest === current) return;
    if (current) current.removeAttribute("aria-current");
    current = latest;
    if (current) {
      current.setAttribute("aria-current", "true");
      follow(current);
    }
  }

  function onTime() {
    var now = video.currentTime;
    while (next < timed.length && timed[next].video_time <= now) {
      if (timed[next].video_time >= now - CATCH_UP_S) fly(timed[next]);
      next++;
    }
    mark(now);
  }

  function start(messages) {
    var untimed = messages.filter(function (m) { return typeof m.video_time !== "number"; });
    timed = messages.filter(function (m) { return typeof m.video_time === "number"; });
    timed.sort(function (a, b) { return a.video_time - b.video_time || a.seq - b.seq; });
    var fragment = document.createDocumentFragment();
    untimed.forEach(function (m) { fragment.appendChild(item(m)); }); // before the video began
    items = timed.map(function (m) {
      var li = item(m);
      fragment.appendChild(li);
      return li;
    });
    list.textContent = "";
    list.appendChild(fragment);
    panel.querySelector(".live-empty").hidden = messages.length > 0;
    next = indexAt(video.currentTime - CATCH_UP_S);
    reached = 0;
    current = null;
    panel.dataset.replayReady = "1";
    onTime();
  }

  list.addEventListener("click", function (event) {
    var seek = event.target.closest(".replay-seek");
    if (!seek) return;
    video.currentTime = parseFloat(seek.dataset.time);
    touchedAt = 0;
  });
  ["wheel", "touchmove"].forEach(function (name) {
    list.addEventListener(name, function () { touchedAt = Date.now(); }, {passive: true});
  });

  video.addEventListener("timeupdate", onTime);
  // A jump elsewhere clears the picture; the messages of the last seconds before the new
  // moment fly again (all the earlier ones again too, when the jump went back).
  video.addEventListener("seeking", function () {
    clear();
    next = indexAt(video.currentTime - CATCH_UP_S);
  });

  // The messages the server rendered (its first page), as the API gives them: the rest is
  // read after the last of them, not all again from the start.
  function rendered() {
    return Array.prototype.map.call(list.querySelectorAll(".live-item"), function (li) {
      var time = li.dataset.videoTime;
      return {id: parseInt(li.dataset.id, 10), seq: parseInt(li.dataset.seq, 10),
              kind: li.dataset.kind || "comment",
              author: li.querySelector(".live-author").textContent,
              text: li.querySelector(".live-text").textContent,
              pinned: li.classList.contains("live-pinned"),
              video_time: time === undefined || time === "" ? null : parseFloat(time)};
    });
  }

  var first = rendered();
  var lastShown = first.length ? first[first.length - 1].seq : 0;
  load(lastShown, first).then(start).catch(function () {
    // The list the server rendered stays; nothing flies without the messages' times.
    toggle.hidden = true;
    overlay.hidden = true;
  });
}());
