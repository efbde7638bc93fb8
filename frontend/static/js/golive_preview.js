// The go-live page's private preview and the session's buttons (console/golive.html). Every
// POLL_MS it reads GET /api/events/{id}/live ({state, signal, source, width, height, runs,
// on_air_at, preview_url, last_error, peak_viewers, total_viewers}): the webcast's state
// (预览 / 直播中 / 信号中断), and the preview_url it plays with hls.js (muted, at the live edge),
// showing how far behind the edge it plays. The status buttons post to the API in place: the
// camera keeps sending while the session goes live or ends.
(function () {
  "use strict";
  var root = document.getElementById("golive");
  if (!root) return;
  var texts = JSON.parse(root.dataset.text);
  var eventId = root.dataset.eventId;
  var POLL_MS = 2000;
  var video = document.getElementById("golive-preview");
  var empty = document.getElementById("golive-preview-empty");
  var stateShown = document.getElementById("golive-state");
  var statusShown = document.getElementById("golive-status");
  var notice = document.getElementById("golive-notice");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var hls = null;
  var playing = ""; // the preview_url attached

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function text(id, value) { document.getElementById(id).textContent = value; }

  function showState(state) {
    if (!state || !texts.states[state]) return;
    stateShown.textContent = texts.states[state];
    stateShown.className = "golive-state state-" + state;
    root.dataset.state = state;
  }

  function attach(url) {
    playing = url;
    empty.hidden = true;
    if (hls) { hls.destroy(); hls = null; }
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({enableWorker: false, liveSyncDurationCount: 3,
                            liveDurationInfinity: true, backBufferLength: 30});
      hls.loadSource(url);
      hls.attachMedia(video);
      hls.on(window.Hls.Events.ERROR, function (_event, data) {
        if (!data.fatal) return;
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else {
          // The encoder's first segment not written yet (its playlists 404), or gone: the
          // next read of the state attaches it again.
          hls.destroy();
          hls = null;
          playing = "";
        }
      });
    } else {
      video.src = url;
    }
    video.muted = true;
    var started = video.play();
    if (started && started.catch) started.catch(function () {});
  }

  function apply(live) {
    showState(live.state);
    if (live.preview_url && live.preview_url !== playing) attach(live.preview_url);
    text("golive-size", live.width ? live.width + "×" + live.height : "–");
    text("golive-source", live.source || "–");
    text("golive-viewers", fill(texts.viewers, {peak: live.peak_viewers || 0,
                                                total: live.total_viewers || 0}));
    var error = document.getElementById("golive-last-error");
    error.textContent = live.last_error || "";
    error.hidden = !live.last_error;
  }

  function poll() {
    fetch("/api/events/" + eventId + "/live", {headers: {Accept: "application/json"},
                                              cache: "no-store"})
      .then(function (response) {
        if (response.status === 404) throw new Error("missing");
        return response.json();
      })
      .then(apply)
      .catch(function () { /* no webcast yet, or the next read succeeds */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  // How far behind the encoder's live edge the preview plays (hls.js says it).
  function showLatency() {
    var late = null;
    if (hls && typeof hls.latency === "number" && isFinite(hls.latency) && hls.latency > 0) {
      late = hls.latency;
    } else if (video.seekable.length) {
      late = video.seekable.end(video.seekable.length - 1) - video.currentTime;
    }
    text("golive-latency", late === null || !playing ? "–"
      : fill(texts.latency, {n: late.toFixed(1)}));
  }

  // ---- the session's status: go live (on air), end -------------------------------------------
  function showStatus(status) {
    root.dataset.status = status;
    statusShown.textContent = texts.statuses[status] || status;
    statusShown.className = "badge status-" + status;
    Array.prototype.forEach.call(document.querySelectorAll(".golive-status-form"),
      function (form) {
        var target = form.querySelector("input[name=status]").value;
        form.hidden = !(target === "live" && status === "published"
                        || target === "ended" && status === "live");
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".golive-status-form"),
    function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button");
        button.disabled = true;
        var target = form.querySelector("input[name=status]").value;
        fetch("/api/events/" + eventId + "/status", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", Accept: "application/json",
                    "X-CSRF-Token": csrf},
          body: JSON.stringify({status: target})})
          .then(function (response) {
            return response.json().then(function (answer) {
              if (!response.ok) {
                throw new Error(texts.errors[answer.error] || answer.message || answer.error);
              }
              notice.hidden = true;
              showStatus(answer.status || target);
            });
          })
          .catch(function (error) {
            notice.textContent = fill(texts.statusFailed, {why: error.message});
            notice.hidden = false;
          })
          .then(function () { button.disabled = false; });
      });
    });

  root.addEventListener("golive:state", function (event) { showState(event.detail); });
  window.setInterval(showLatency, 1000);
  poll();
}());
