// The console's "go live" page (console/golive.html): this browser's camera and microphone as
// the session's live source. getUserMedia shows the picture here; MediaRecorder cuts it into
// 1 s WebM chunks (VP8 and Opus where the browser has them), sent as binary frames over
// /ws/events/{id}/ingest (streaming/ingest_socket.py), cut into pieces under the socket's frame
// limit. The server answers in JSON: accepted, refused (its reason shown), stats (what it
// received, chunks late or dropped on its side, the webcast's state). Each connection is one
// recording with its own header: after a drop the page reconnects and starts a new one, and
// the server's hub continues the same stream within its grace time.
(function () {
  "use strict";
  var root = document.getElementById("golive");
  if (!root) return;
  var texts = JSON.parse(root.dataset.text);
  var eventId = root.dataset.eventId;
  var PIECE = 256 * 1024; // a frame well under the ingest socket's limit (1 MiB)
  var TIMESLICE_MS = 1000;
  var MAX_BUFFERED = 8 * 1024 * 1024; // about 25 s at the bitrate asked: past it, drop
  var VIDEO_BPS = 2500000, AUDIO_BPS = 128000;
  var local = document.getElementById("golive-local");
  var cameraSelect = document.getElementById("golive-camera-select");
  var micSelect = document.getElementById("golive-mic-select");
  var openButton = document.getElementById("golive-open");
  var startButton = document.getElementById("golive-start");
  var stopButton = document.getElementById("golive-stop");
  var sendState = document.getElementById("golive-send-state");
  var notice = document.getElementById("golive-notice");
  var shown = {kbps: "golive-kbps", sent: "golive-sent", received: "golive-received",
               buffered: "golive-buffered", late: "golive-late", dropped: "golive-dropped"};
  Object.keys(shown).forEach(function (key) { shown[key] = document.getElementById(shown[key]); });

  var camera = null; // the MediaStream
  var socket = null;
  var recorder = null;
  var wanted = false; // the staff member asked to send (a drop reconnects while it is so)
  var attempt = 0;
  var chain = Promise.resolve(); // chunks go out in order, one after the other
  var sent = 0, late = 0, dropped = 0, serverLate = 0, serverDropped = 0;
  var recent = []; // [time, bytes] of the last seconds: the bitrate
  var lastChunk = 0;
  var chunksThisRun = 0;

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function say(message) { sendState.textContent = message || ""; }

  function warn(message) {
    notice.textContent = message || "";
    notice.hidden = !message;
  }

  function mimeType() {
    if (!window.MediaRecorder) return null;
    var kinds = ["video/webm;codecs=vp8,opus", "video/webm;codecs=h264,opus",
                 "video/webm;codecs=vp9,opus", "video/webm"];
    for (var i = 0; i < kinds.length; i++) {
      if (window.MediaRecorder.isTypeSupported(kinds[i])) return kinds[i];
    }
    return null;
  }

  // ---- the camera ---------------------------------------------------------------------------
  function listDevices() {
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      [[cameraSelect, "videoinput"], [micSelect, "audioinput"]].forEach(function (pair) {
        var select = pair[0], chosen = select.value;
        while (select.options.length > 1) select.remove(1);
        devices.filter(function (d) { return d.kind === pair[1] && d.deviceId; })
          .forEach(function (d, n) {
            var option = document.createElement("option");
            option.value = d.deviceId;
            option.textContent = d.label || pair[1] + " " + (n + 1);
            select.appendChild(option);
          });
        select.value = chosen;
        select.disabled = select.options.length < 2;
      });
    });
  }

  function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      warn(fill(texts.cameraFailed, {why: "getUserMedia"}));
      return Promise.resolve();
    }
    if (camera) camera.getTracks().forEach(function (track) { track.stop(); });
    var video = {width: {ideal: 1280}, height: {ideal: 720}, frameRate: {ideal: 25, max: 30}};
    if (cameraSelect.value) video.deviceId = {exact: cameraSelect.value};
    var audio = micSelect.value ? {deviceId: {exact: micSelect.value}} : true;
    return navigator.mediaDevices.getUserMedia({video: video, audio: audio})
      .then(function (stream) {
        camera = stream;
        local.srcObject = stream;
        var playing = local.play();
        if (playing && playing.catch) playing.catch(function () {});
        warn("");
        startButton.disabled = !mimeType();
        if (!mimeType()) warn(texts.noRecorder);
        openButton.hidden = true;
        return listDevices();
      })
      .catch(function (error) {
        warn(fill(texts.cameraFailed, {why: error && error.name || String(error)}));
      });
  }

  // ---- sending --------------------------------------------------------------------------------
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/events/" + eventId + "/ingest");
    socket.binaryType = "arraybuffer";
    say(texts.connecting);
    var mine = socket;
    socket.onmessage = function (event) {
      if (typeof event.data !== "string") return;
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "accepted") {
        attempt = 0;
        warn("");
        say(texts.sending);
        record(mine);
      } else if (frame.type === "refused" || frame.type === "error") {
        wanted = frame.type === "error" && wanted; // a refusal is final; an error reconnects
        warn(fill(texts.refused, {why: frame.message || frame.code}));
      } else if (frame.type === "stats") {
        serverLate = frame.late;
        serverDropped = frame.dropped;
        shown.received.textContent = fill(texts.megabytes,
                                          {n: (frame.bytes / 1048576).toFixed(1)});
        root.dispatchEvent(new CustomEvent("golive:state", {detail: frame.state}));
      }
    };
    socket.onclose = function (event) {
      if (mine !== socket) return;
      stopRecorder();
      socket = null;
      var final = texts["closed" + event.code];
      if (final && event.code !== 1009) wanted = false;
      if (final) warn(final);
      if (wanted) {
        say(texts.dropped);
        attempt += 1;
        window.setTimeout(function () { if (wanted && !socket) connect(); },
                          Math.min(10000, 500 * Math.pow(2, attempt)));
      } else {
        say(texts.stopped);
        showButtons();
      }
    };
  }

  function record(mine) {
    chunksThisRun = 0;
    recorder = new window.MediaRecorder(camera, {mimeType: mimeType(),
                                                 videoBitsPerSecond: VIDEO_BPS,
                                                 audioBitsPerSecond: AUDIO_BPS});
    var running = recorder;
    lastChunk = performance.now();
    recorder.ondataavailable = function (event) {
      if (!event.data || !event.data.size) return;
      var now = performance.now();
      if (chunksThisRun > 0 && now - lastChunk > TIMESLICE_MS * 1.5) late += 1;
      lastChunk = now;
      send(mine, event.data, chunksThisRun === 0);
      chunksThisRun += 1;
    };
    recorder.onstop = function () {
      // After the last chunk: the server closes the feed as stopped, not dropped.
      chain = chain.then(function () {
        if (mine.readyState === WebSocket.OPEN && !wanted) {
          mine.send(JSON.stringify({type: "stop"}));
        }
      });
      if (running === recorder) recorder = null;
    };
    recorder.start(TIMESLICE_MS);
  }

  function send(mine, blob, first) {
    // The network is far behind: drop a chunk rather than queue minutes (never the header).
    if (!first && mine.bufferedAmount > MAX_BUFFERED) {
      dropped += 1;
      return;
    }
    chain = chain.then(function () { return blob.arrayBuffer(); }).then(function (buffer) {
      if (mine.readyState !== WebSocket.OPEN) { dropped += 1; return; }
      for (var at = 0; at < buffer.byteLength; at += PIECE) {
        mine.send(buffer.slice(at, Math.min(buffer.byteLength, at + PIECE)));
      }
      sent += buffer.byteLength;
      recent.push([performance.now(), buffer.byteLength]);
    }).catch(function () { dropped += 1; });
  }

  function stopRecorder() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function showButtons() {
    stopButton.hidden = !wanted;
    startButton.hidden = wanted;
    cameraSelect.disabled = micSelect.disabled = wanted;
  }

  function start() {
    if (!camera) return;
    wanted = true;
    showButtons();
    connect();
  }

  function stop() {
    wanted = false;
    showButtons();
    if (recorder && recorder.state !== "inactive") recorder.stop(); // then `stop`, then close
    else if (socket) socket.close(1000);
    window.setTimeout(function () { if (socket && !wanted) socket.close(1000); }, 3000);
  }

  function showStats() {
    var now = performance.now();
    recent = recent.filter(function (item) { return now - item[0] < 5000; });
    var bytes = recent.reduce(function (sum, item) { return sum + item[1]; }, 0);
    var span = Math.min(5, Math.max(1, (now - (recent.length ? recent[0][0] : now)) / 1000));
    shown.kbps.textContent = socket ? fill(texts.kbps, {n: Math.round(bytes * 8 / 1000 / span)})
      : "–";
    shown.sent.textContent = fill(texts.megabytes, {n: (sent / 1048576).toFixed(1)});
    shown.buffered.textContent = socket ? fill(texts.megabytes, {
      n: (socket.bufferedAmount / 1048576).toFixed(2)}) : "–";
    shown.late.textContent = String(late + serverLate);
    shown.dropped.textContent = String(dropped + serverDropped);
  }

  openButton.addEventListener("click", openCamera);
  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  [cameraSelect, micSelect].forEach(function (select) {
    select.addEventListener("change", function () { if (!wanted) openCamera(); });
  });
  window.setInterval(showStats, 1000);
  say(texts.cameraNeeded);
}());
