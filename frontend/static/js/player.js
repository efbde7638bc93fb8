// The recording player (portal/_player.html): hls.js where the browser has Media Source
// Extensions, the browser's own HLS otherwise (Safari on iOS); a quality menu, keyboard
// control, seek previews from the thumbnails VTT, and the premiere clock: during a premiere
// every viewer plays the same moment (GET /api/events/{id}/playback gives the server's time and
// position), drift over 2 s is corrected, and nobody runs ahead.
(function () {
  "use strict";
  var root = document.querySelector(".player");
  if (!root) return;
  var video = root.querySelector(".player-video");
  var seek = root.querySelector(".player-seek");
  var quality = root.querySelector(".player-quality");
  var preview = root.querySelector(".player-preview");
  var texts = JSON.parse(root.dataset.text || "{}");
  var src = root.dataset.src;
  var premiere = root.dataset.state === "premiere";
  var DRIFT_S = 2;
  var clock = null; // {position, at (performance.now() when read)}: the premiere's moment
  var hls = null;

  function mmss(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  // ---- the source -------------------------------------------------------------------------
  if (window.Hls && window.Hls.isSupported()) {
    // No worker: the page's Content-Security-Policy allows no blob: scripts.
    hls = new window.Hls({enableWorker: false, capLevelToPlayerSize: true,
                          startPosition: -1});
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, function () {
      if (hls.levels.length < 2 || !quality) return;
      hls.levels.forEach(function (level, index) {
        var option = document.createElement("option");
        option.value = String(index);
        // The rendition's folder names its class (720p), a portrait one's too (720x1280).
        var named = /\/(\d+p)\/index\.m3u8/.exec(level.url || "");
        option.textContent = named ? named[1] : level.height
          ? Math.min(level.width || level.height, level.height) + "p" : texts.audio || "audio";
        quality.appendChild(option);
      });
      quality.parentElement.hidden = false;
    });
    hls.on(window.Hls.Events.ERROR, function (_event, data) {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    if (quality) {
      quality.addEventListener("change", function () {
        hls.currentLevel = parseInt(quality.value, 10);
      });
    }
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src; // Safari and iOS play HLS themselves, quality chosen by the device
  }

  // ---- the premiere clock -----------------------------------------------------------------
  function target() {
    return clock ? clock.position + (performance.now() - clock.at) / 1000 : null;
  }

  function readClock() {
    var asked = performance.now();
    return fetch(root.dataset.playbackUrl, {headers: {Accept: "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.state !== "premiere") {
          premiere = false;
          clock = null;
          root.dataset.state = answer.state;
          if (seek) seek.disabled = false;
          return;
        }
        // Half the round trip has passed since the server read its clock.
        var half = (performance.now() - asked) / 2000;
        clock = {position: answer.position_s + half, at: performance.now()};
      })
      .catch(function () { /* keep the last clock; the next read may succeed */ });
  }

  function keepInStep() {
    var now = target();
    if (now === null || video.paused) return;
    var drift = video.currentTime - now;
    if (drift > 0.5 || drift < -DRIFT_S) video.currentTime = now; // never ahead, never far behind
  }

  if (premiere) {
    readClock().then(function () { if (target() !== null) video.currentTime = target(); });
    window.setInterval(readClock, 30000);
    window.setInterval(keepInStep, 1000);
    video.addEventListener("seeking", function () {
      var now = target();
      if (premiere && now !== null && video.currentTime > now + 0.5) video.currentTime = now;
    });
    var join = root.querySelector(".player-join-button");
    if (join) {
      join.addEventListener("click", function () {
        if (target() !== null) video.currentTime = target();
        video.play();
        join.parentElement.hidden = true;
      });
    }
  }

  // ---- the position bar and seek previews -------------------------------------------------
  var cues = [];
  function loadPreviews() {
    if (!root.dataset.thumbnails) return;
    fetch(root.dataset.thumbnails).then(function (r) { return r.text(); }).then(function (vtt) {
      var base = root.dataset.thumbnails.replace(/[^/]*$/, "");
      var blocks = vtt.split(/\n\n+/);
      blocks.forEach(function (block) {
        var lines = block.trim().split("\n");
        var times = /(\d+):(\d+):(\d+\.\d+) --> (\d+):(\d+):(\d+\.\d+)/.exec(lines[0] || "");
        var where = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(lines[1] || "");
        if (!times || !where) return;
        var start = +times[1] * 3600 + +times[2] * 60 + parseFloat(times[3]);
        var end = +times[4] * 3600 + +times[5] * 60 + parseFloat(times[6]);
        cues.push({start: start, end: end, url: base + where[1], x: +where[2], y: +where[3],
                   w: +where[4], h: +where[5]});
      });
    }).catch(function () {});
  }

  function showPreview(seconds) {
    if (!preview) return;
    var cue = null;
    for (var i = 0; i < cues.length; i++) {
      if (seconds >= cues[i].start && seconds < cues[i].end) { cue = cues[i]; break; }
    }
    preview.hidden = false;
    if (cue) {
      preview.style.width = cue.w + "px";
      preview.style.height = cue.h + "px";
      preview.style.backgroundImage = "url(\"" + cue.url + "\")";
      preview.style.backgroundPosition = "-" + cue.x + "px -" + cue.y + "px";
    }
    var share = seek.max > 0 ? seconds / seek.max : 0;
    preview.style.left = "calc(" + (share * 100) + "% - " + ((cue ? cue.w : 60) * share) + "px)";
    preview.querySelector(".player-preview-time").textContent = mmss(seconds);
  }

  if (seek) {
    loadPreviews();
    var dragging = false;
    video.addEventListener("timeupdate", function () {
      if (dragging) return;
      seek.value = String(video.currentTime);
      seek.setAttribute("aria-valuetext", mmss(video.currentTime));
    });
    video.addEventListener("loadedmetadata", function () {
      if (isFinite(video.duration)) seek.max = String(video.duration);
    });
    seek.addEventListener("input", function () {
      dragging = true;
      showPreview(parseFloat(seek.value));
    });
    seek.addEventListener("change", function () {
      dragging = false;
      video.currentTime = parseFloat(seek.value);
      if (preview) preview.hidden = true;
    });
    seek.addEventListener("pointermove", function (event) {
      var box = seek.getBoundingClientRect();
      showPreview(Math.max(0, Math.min(1, (event.clientX - box.left) / box.width)) * seek.max);
    });
    seek.addEventListener("pointerleave", function () {
      if (preview && !dragging) preview.hidden = true;
    });
  }

  var chapters = root.querySelector(".player-chapters");
  if (chapters) {
    chapters.addEventListener("change", function () {
      if (!premiere) video.currentTime = parseFloat(chapters.value);
    });
  }

  // ---- the keyboard -----------------------------------------------------------------------
  function toggleCaptions() {
    var tracks = Array.prototype.filter.call(video.textTracks, function (t) {
      return t.kind === "captions" || t.kind === "subtitles";
    });
    if (!tracks.length) return;
    var showing = tracks.some(function (t) { return t.mode === "showing"; });
    tracks.forEach(function (t, i) { t.mode = !showing && i === 0 ? "showing" : "disabled"; });
  }

  root.addEventListener("keydown", function (event) {
    if (event.target.tagName === "SELECT" || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var key = event.key;
    var handled = true;
    if (key === " " || key === "k" || key === "K") {
      if (event.target.tagName === "BUTTON") return;
      if (video.paused) video.play(); else video.pause();
    } else if (key === "ArrowLeft") {
      video.currentTime = Math.max(0, video.currentTime - 5);
    } else if (key === "ArrowRight") {
      var limit = premiere && target() !== null ? target() : video.duration || Infinity;
      video.currentTime = Math.min(limit, video.currentTime + 5);
    } else if (key === "ArrowUp") {
      video.volume = Math.min(1, video.volume + 0.1);
    } else if (key === "ArrowDown") {
      video.volume = Math.max(0, video.volume - 0.1);
    } else if (key === "m" || key === "M") {
      video.muted = !video.muted;
    } else if (key === "c" || key === "C") {
      toggleCaptions();
    } else if (key === "f" || key === "F") {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (root.requestFullscreen) root.requestFullscreen();
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });
}());
