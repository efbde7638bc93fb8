// The recording player (portal/_player.html): hls.js where the browser has Media Source
// Extensions, the browser's own HLS otherwise (Safari on iOS); our own controls (one bar: the
// browser's are taken away, so a key or a click acts once), a quality menu, keyboard control,
// seek previews from the thumbnails VTT, a chapter menu that follows playback, and the premiere
// clock: during a premiere every viewer plays the same moment (GET /api/events/{id}/playback
// gives the server's time and position), drift over 2 s is corrected, and nobody runs ahead.
// A premiere starts by itself, muted (what browsers allow), with a button to turn the sound on.
// A live webcast (data-state live) does too, with hls.js's live settings; the room's page may
// hold the player hidden (data-state waiting, no source) until player_live.js finds the
// session on air and sends `player:live`; the live parts themselves (the 直播 badge, 回到直播,
// the seek bar from what is seekable, the signal's notice) are player_live.js's. A recording
// opened with ?t=SECONDS (or #t=) starts at that moment.
(function () {
  "use strict";
  var root = document.querySelector(".player");
  if (!root) return;
  var video = root.querySelector(".player-video");
  var seek = root.querySelector(".player-seek");
  var quality = root.querySelector(".player-quality");
  var preview = root.querySelector(".player-preview");
  var texts = JSON.parse(root.dataset.text || "{}");
  var premiere = root.dataset.state === "premiere";
  var live = root.dataset.state === "live";
  var duration = parseFloat(root.dataset.duration) || 0;
  var DRIFT_S = 2;
  var clock = null; // {position, at (performance.now() when read)}: the premiere's moment
  var hls = null;
  // A link to a moment of a recording (?t=95 or #t=95: the archive's answers) starts there.
  var startAt = /[?&#]t=(\d+(?:\.\d+)?)/.exec(location.search + location.hash);
  startAt = root.dataset.state === "vod" && startAt ? parseFloat(startAt[1]) : null;
  if (premiere && root.dataset.position !== "") {
    // The server's moment when it wrote the page; the first read of the clock corrects it.
    clock = {position: parseFloat(root.dataset.position), at: performance.now()};
  }

  function mmss(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  function target() {
    return clock ? clock.position + (performance.now() - clock.at) / 1000 : null;
  }

  // ---- the source -------------------------------------------------------------------------
  // Live: 2 s segments, three behind the edge (6 s); never pulled back to the edge after a
  // seek back (DVR: liveMaxLatencyDurationCount stays Infinity); the duration stays Infinity
  // (the bar is built from video.seekable); what plays is kept a minute behind.
  var LIVE_CONFIG = {liveSyncDurationCount: 3, liveMaxLatencyDurationCount: Infinity,
                     liveDurationInfinity: true, backBufferLength: 60,
                     manifestLoadingMaxRetry: 6, levelLoadingMaxRetry: 6,
                     fragLoadingMaxRetry: 6};

  function attach(src) {
    if (window.Hls && window.Hls.isSupported()) {
      var config = {enableWorker: false, capLevelToPlayerSize: true,
                    startPosition: premiere && target() !== null ? target()
                      : startAt !== null ? startAt : -1};
      if (live) Object.keys(LIVE_CONFIG).forEach(function (key) { config[key] = LIVE_CONFIG[key]; });
      // No worker: the page's Content-Security-Policy allows no blob: scripts.
      hls = new window.Hls(config);
      root.kaifangHls = hls; // player_live.js reads the live edge and the latency from it
      hls.loadSource(src);
      hls.attachMedia(video);
      hls.on(window.Hls.Events.MANIFEST_PARSED, function () {
        if (hls.levels.length < 2 || !quality) return;
        hls.levels.forEach(function (level, index) {
          var option = document.createElement("option");
          option.value = String(index);
          // The rendition's folder names its class (720p), a portrait one's too (720x1280).
          var named = /\/(\d+p)\/(?:index|live)\.m3u8/.exec(level.url || "");
          option.textContent = named ? named[1] : level.height
            ? Math.min(level.width || level.height, level.height) + "p" : texts.audio || "audio";
          quality.appendChild(option);
        });
        quality.parentElement.hidden = false;
      });
      hls.on(window.Hls.Events.ERROR, function (_event, data) {
        if (!data.fatal) return;
        if (live && data.type === window.Hls.ErrorTypes.NETWORK_ERROR
            && /^(manifest|level)/.test(data.details)) {
          // A live playlist that did not answer (a publisher's first seconds, a restart):
          // read it again in a moment rather than give up.
          window.setTimeout(function () { hls.loadSource(src); }, 2000);
        } else if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
          hls.startLoad();
        } else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        }
      });
      if (quality) {
        quality.addEventListener("change", function () {
          hls.currentLevel = parseInt(quality.value, 10);
        });
      }
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src; // Safari and iOS play HLS themselves, quality chosen by the device
      if (startAt !== null) {
        video.addEventListener("loadedmetadata", function () { video.currentTime = startAt; },
                               {once: true});
      }
    }
    if (startAt !== null) root.scrollIntoView();
  }

  // ---- the premiere clock -----------------------------------------------------------------

  function readClock() {
    var asked = performance.now();
    return fetch(root.dataset.playbackUrl, {headers: {Accept: "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.state !== "premiere") {
          premiereOver(answer.state);
          return;
        }
        // Half the round trip has passed since the server read its clock.
        var half = (performance.now() - asked) / 2000;
        clock = {position: answer.position_s + half, at: performance.now()};
      })
      .catch(function () { /* keep the last clock; the next read may succeed */ });
  }

  // The premiere is over (its end reached, or the server says so): what it said goes too.
  function premiereOver(state) {
    if (!premiere) return;
    premiere = false;
    clock = null;
    root.dataset.state = state || "vod";
    if (seek) seek.disabled = false;
    Array.prototype.forEach.call(root.querySelectorAll(".player-premiere, .player-join"),
                                 function (node) { node.hidden = true; });
  }

  var join = root.querySelector(".player-join-button");
  var unmute = root.querySelector(".player-unmute");
  var autoMuted = false; // muted by us to start by itself, not by the viewer

  // Muted, at the premiere's moment: browsers let a muted video start without a tap. Should
  // even that be refused, the 加入首映 button stays for the viewer to press.
  function startPremiere() {
    if (target() !== null) video.currentTime = target();
    startMuted();
  }

  // Muted (what browsers let start without a tap), with 点击开启声音 over the picture.
  function startMuted() {
    video.muted = true;
    video.autoplay = true; // starts when hls.js has the first pieces, whenever that is
    autoMuted = true;
    video.addEventListener("playing", function () {
      if (unmute) unmute.hidden = !(autoMuted && video.muted);
      if (join) join.parentElement.hidden = true;
    });
    var started = video.play();
    if (started && started.catch) {
      started.catch(function (error) {
        if (error && error.name === "NotAllowedError" && join) join.parentElement.hidden = false;
      });
    }
  }

  function keepInStep() {
    var now = target();
    if (now === null || video.paused) return;
    if (duration && now >= duration + 1) { readClock(); return; } // over: the server says so
    var drift = video.currentTime - now;
    if (drift > 0.5 || drift < -DRIFT_S) video.currentTime = now; // never ahead, never far behind
  }

  if (root.dataset.src) {
    attach(root.dataset.src);
    if (live) startMuted();
  } else {
    // The room's player waits hidden; player_live.js names the source once the session is on air.
    root.addEventListener("player:live", function () {
      live = true;
      attach(root.dataset.src);
      startMuted();
    }, {once: true});
  }

  if (premiere) {
    startPremiere();
    readClock().then(function () {
      if (target() !== null && !video.paused && Math.abs(video.currentTime - target()) > 0.5) {
        video.currentTime = target();
      }
    });
    window.setInterval(readClock, 30000);
    window.setInterval(keepInStep, 1000);
    video.addEventListener("loadedmetadata", function () {
      if (premiere && target() !== null) video.currentTime = target();
    });
    video.addEventListener("seeking", function () {
      var now = target();
      if (premiere && now !== null && video.currentTime > now + 0.5) video.currentTime = now;
    });
    video.addEventListener("ended", function () { if (premiere) readClock(); });
    if (join) {
      join.addEventListener("click", function () {
        if (target() !== null) video.currentTime = target();
        video.play();
        join.parentElement.hidden = true;
      });
    }
  }
  if (unmute) {
    unmute.addEventListener("click", function () {
      autoMuted = false;
      unmute.hidden = true; // at once, not when the browser's volumechange comes
      video.muted = false;
      if (video.volume === 0) video.volume = 0.5;
      if (video.paused) video.play();
    });
  }

  // ---- our controls instead of the browser's ---------------------------------------------
  var playButton = root.querySelector(".player-play");
  var muteButton = root.querySelector(".player-mute");
  var fullButton = root.querySelector(".player-full");
  var timeShown = root.querySelector(".player-time");

  function toggle() {
    if (video.paused || video.ended) {
      if (premiere && target() !== null) video.currentTime = target();
      var started = video.play();
      if (started && started.catch) started.catch(function () {});
    } else {
      video.pause();
    }
  }

  function fullScreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen();
    else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen(); // iPhone
  }

  function showState() {
    root.classList.toggle("is-playing", !video.paused);
    if (playButton) playButton.textContent = video.paused ? texts.play : texts.pause;
    if (muteButton) {
      muteButton.textContent = video.muted ? texts.unmute : texts.mute;
      muteButton.setAttribute("aria-pressed", video.muted ? "true" : "false");
    }
    if (!video.muted) autoMuted = false;
    if (unmute) unmute.hidden = !(autoMuted && video.muted && !video.paused);
  }

  if (playButton) {
    video.controls = false; // one bar (ours); the browser's keys would act a second time
    video.tabIndex = 0; // a click on the picture puts the keys on the player
    [playButton, muteButton, fullButton, timeShown].forEach(function (node) {
      if (node) node.hidden = false;
    });
    playButton.addEventListener("click", toggle);
    video.addEventListener("click", toggle);
    video.addEventListener("dblclick", fullScreen);
    if (muteButton) {
      muteButton.addEventListener("click", function () { video.muted = !video.muted; });
    }
    if (fullButton) fullButton.addEventListener("click", fullScreen);
    ["play", "pause", "ended", "volumechange"].forEach(function (name) {
      video.addEventListener(name, showState);
    });
    if (timeShown) {
      // The length shows before playing too (0:00 / 0:24), not only once time moves.
      var showTime = function () {
        if (live) return; // player_live.js says how far behind the live edge it plays
        var total = duration || (isFinite(video.duration) ? video.duration : 0);
        timeShown.textContent = mmss(video.currentTime) + (total ? " / " + mmss(total) : "");
      };
      ["timeupdate", "durationchange"].forEach(function (name) {
        video.addEventListener(name, showTime);
      });
      showTime();
    }
    showState();
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
      // A premiere's playlist grows with the clock: its bar keeps the recording's length.
      if (isFinite(video.duration) && !premiere) seek.max = String(video.duration);
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
    // The menu names the chapter playing now.
    video.addEventListener("timeupdate", function () {
      var now = video.currentTime + 0.05;
      var current = 0;
      for (var i = 0; i < chapters.options.length; i++) {
        if (parseFloat(chapters.options[i].value) <= now) current = i;
      }
      if (chapters.selectedIndex !== current && document.activeElement !== chapters) {
        chapters.selectedIndex = current;
      }
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
    var key = event.key;
    // A menu and the position bar take their own arrows (else a key would act twice).
    if (event.target.tagName === "SELECT" || event.altKey || event.ctrlKey || event.metaKey ||
        event.target.tagName === "INPUT" && key.indexOf("Arrow") === 0) {
      return;
    }
    var handled = true;
    if (key === " " || key === "k" || key === "K") {
      if (event.target.tagName === "BUTTON") return;
      toggle();
    } else if (key === "ArrowLeft") {
      video.currentTime = Math.max(0, video.currentTime - 5);
    } else if (key === "ArrowRight") {
      var limit = premiere && target() !== null ? target()
        : live && video.seekable.length ? video.seekable.end(video.seekable.length - 1)
          : video.duration || Infinity;
      video.currentTime = Math.min(limit, video.currentTime + 5);
    } else if (key === "ArrowUp") {
      video.volume = Math.min(1, Math.round(video.volume * 10 + 1) / 10);
      video.muted = false;
    } else if (key === "ArrowDown") {
      video.volume = Math.max(0, Math.round(video.volume * 10 - 1) / 10);
    } else if (key === "m" || key === "M") {
      video.muted = !video.muted;
    } else if (key === "c" || key === "C") {
      toggleCaptions();
    } else if (key === "f" || key === "F") {
      fullScreen();
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });
}());
