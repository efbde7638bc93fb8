// The live half of the player (portal/_player.html, after player.js). While the room waits
// (data-state waiting: the countdown, or a live session with no picture yet) it reads
// GET /api/events/{id}/playback every POLL_WAIT_MS and, once the session is on air, shows the
// player in the screen's place and hands player.js the source (`player:live`): no reload.
// While live it reads it every POLL_LIVE_MS for the publisher's signal ("waiting": 信号中断，
// 正在等待; "lost": 直播信号已中断, over the picture and in the room's notice) and for the end
// (then the page comes back as the archive). It shows the 直播 badge, "回到直播" once the
// viewer is behind the live edge (paused, or sought back into the EVENT playlist), and builds
// the seek bar from video.seekable: a live duration is Infinity.
(function () {
  "use strict";
  var root = document.querySelector(".player");
  if (!root || (root.dataset.state !== "live" && root.dataset.state !== "waiting")) return;
  var video = root.querySelector(".player-video");
  var seek = root.querySelector(".player-seek");
  var badge = root.querySelector(".player-live-badge");
  var back = root.querySelector(".player-back-live");
  var timeShown = root.querySelector(".player-time");
  var overlay = root.querySelector(".player-signal");
  var roomNotice = document.querySelector(".room-signal");
  var screen = document.querySelector(".room-screen");
  var texts = JSON.parse(root.dataset.text || "{}");
  var POLL_WAIT_MS = 10000, POLL_LIVE_MS = 5000;
  // Behind the edge by more than hls.js's own target and this much: not "live" any more.
  var SLACK_S = 4;
  var state = root.dataset.state;

  function mmss(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  // ---- the playback answer ------------------------------------------------------------------
  function poll() {
    fetch(root.dataset.playbackUrl, {headers: {Accept: "application/json"},
                                     cache: "no-store"})
      .then(function (response) { return response.json(); })
      .then(apply)
      .catch(function () { /* the next read may succeed */ })
      .then(function () {
        if (state !== "over") window.setTimeout(poll, state !== "waiting" ? POLL_LIVE_MS
          : POLL_WAIT_MS + Math.random() * 2000); // spread a hall's phones apart
      });
  }

  function apply(answer) {
    if (answer.state === "live" && answer.hls_url) {
      if (state === "waiting") goLive(answer.hls_url);
      if (state === "live") showSignal(answer.signal);
    } else if (state === "live" || state === "ending") {
      over(answer.state === "vod" && answer.hls_url);
    }
  }

  // On air: the screen makes way for the player, which starts muted at the live edge. A page
  // written before the room opened has no comments panel: it comes back once, with both.
  function goLive(url) {
    if (screen && !document.getElementById("live") && !/[?&]on_air=/.test(location.search)) {
      state = "over";
      window.location.replace(location.pathname + "?on_air=1");
      return;
    }
    state = "live";
    root.dataset.src = url;
    root.dataset.state = "live";
    if (screen) screen.hidden = true;
    var stage = root.closest(".room-stage");
    if (stage && document.getElementById("live")) stage.classList.add("room-stage-side");
    root.hidden = false;
    root.dispatchEvent(new CustomEvent("player:live"));
  }

  // The session ended: the page says so, and comes back as the archive (the same segments,
  // with the comments at their times) once the playback names it.
  function over(archived) {
    if (state !== "ending") say(texts.liveOver || "", false);
    state = archived ? "over" : "ending";
    if (archived) window.setTimeout(function () { window.location.reload(); }, 1000);
  }

  function say(message, isError) {
    [overlay, roomNotice].forEach(function (node) {
      if (!node) return;
      node.textContent = message;
      node.hidden = !message;
      node.classList.toggle("error", !!isError);
    });
  }

  function showSignal(signal) {
    if (signal === "waiting") say(texts.signalWaiting, true);
    else if (signal === "lost") say(texts.signalLost, true);
    else if (state === "live") say("", false);
  }

  // ---- the live edge ------------------------------------------------------------------------
  function edge() {
    var ranges = video.seekable;
    return ranges.length ? ranges.end(ranges.length - 1) : NaN;
  }

  function target() {
    var hls = root.kaifangHls;
    return hls && hls.targetLatency ? hls.targetLatency : 6;
  }

  function behind() {
    var end = edge();
    return isNaN(end) ? 0 : Math.max(0, end - video.currentTime);
  }

  function showEdge() {
    if (state !== "live") return;
    var late = behind();
    var atEdge = !video.paused && late <= target() + SLACK_S;
    if (badge) {
      badge.hidden = false;
      badge.classList.toggle("is-behind", !atEdge);
    }
    if (back) back.hidden = atEdge;
    if (timeShown) { // how far behind the edge; nothing at it (the badge says 直播)
      timeShown.textContent = atEdge ? "" : "-" + mmss(late);
      timeShown.hidden = atEdge;
    }
    if (seek && video.seekable.length) {
      seek.min = String(video.seekable.start(0));
      seek.max = String(edge());
    }
  }

  function toEdge() {
    var hls = root.kaifangHls;
    var position = hls && hls.liveSyncPosition ? hls.liveSyncPosition : edge() - target();
    if (!isNaN(position)) video.currentTime = Math.max(0, position);
    var started = video.play();
    if (started && started.catch) started.catch(function () {});
  }

  if (back) back.addEventListener("click", toEdge);
  ["timeupdate", "progress", "pause", "play", "seeked", "durationchange"].forEach(
    function (name) { video.addEventListener(name, showEdge); });
  window.setInterval(showEdge, 1000);

  if (root.dataset.signal) showSignal(root.dataset.signal);
  window.setTimeout(poll, state === "live" ? POLL_LIVE_MS : 1000);
}());
