/* Check-in at the door: type or scan a ticket code; the JSON API answers; the result shows in
   large type and the counter follows every door phone. Without this file the forms still post. */
(function () {
  "use strict";
  var root = document.getElementById("checkin");
  if (!root || !window.fetch || !window.JSON) { return; }

  var api = "/api/events/" + root.getAttribute("data-event-id");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var texts = JSON.parse(document.getElementById("checkin-text").textContent);
  var isOpen = root.getAttribute("data-open") === "true";
  var result = document.getElementById("checkin-result");
  var form = document.getElementById("checkin-form");
  var input = document.getElementById("checkin-code");
  var status = document.getElementById("scanner-status");
  var POLL_MS = 5000;
  var REPEAT_MS = 3000;  // the same code seen again within this is the same scan
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  // ---- the counter -----------------------------------------------------------------------
  var seatsRemain = true;
  function setCount(name, value) {
    var node = root.querySelector('[data-count="' + name + '"]');
    if (node && node.textContent !== String(value)) { node.textContent = String(value); }
  }
  function showCounts(state) {
    if (!state || typeof state.checked_in_count !== "number") { return; }
    var capacity = state.capacity;
    setCount("checked_in", state.checked_in_count);
    setCount("capacity", capacity ? capacity : texts.no_limit);
    setCount("confirmed", state.confirmed_count);
    setCount("waitlisted", state.waitlist_count);
    setCount("seats_left", capacity ? Math.max(capacity - state.confirmed_count, 0) : texts.no_limit);
    seatsRemain = !capacity || state.confirmed_count < capacity;
    var fields = document.getElementById("walk-in-fields");
    var full = document.getElementById("walk-in-full");
    if (fields) { fields.disabled = !(seatsRemain && isOpen); }
    if (full) { full.hidden = seatsRemain || !isOpen; }
  }
  function refresh() {
    return fetch(api + "/checkins", {credentials: "same-origin",
                                     headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(showCounts)
      .catch(function () { /* the next poll tries again */ });
  }
  window.setInterval(function () { if (!document.hidden) { refresh(); } }, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { refresh(); }
  });

  // ---- the result ------------------------------------------------------------------------
  function show(outcome, name, code, time) {
    var shown = texts.outcomes[outcome];
    result.className = "checkin-result tone-" + shown.tone;
    result.textContent = "";
    var head = el("p", "result-head");
    var icon = el("span", "result-icon", shown.icon);
    icon.setAttribute("aria-hidden", "true");
    head.appendChild(icon);
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "result-text", shown.text.replace("%(time)s", time || "")));
    result.appendChild(head);
    if (name) { result.appendChild(el("p", "result-name", name)); }
    if (code) {
      var line = el("p", "result-code", texts.ticket_code + " ");
      line.appendChild(el("span", "code", code));
      result.appendChild(line);
    }
    // Restart the flash, so the same outcome twice in a row is still seen as new.
    void result.offsetWidth;
    result.classList.add("is-new");
  }
  function problem(message) {
    result.className = "checkin-result tone-refused";
    result.textContent = "";
    var head = el("p", "result-head");
    var icon = el("span", "result-icon", "✗");
    icon.setAttribute("aria-hidden", "true");
    head.appendChild(icon);
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "result-text", message));
    result.appendChild(head);
  }
  function localTime(iso) {
    // The API gives Beijing time with its offset: "2027-03-10T09:31:05+08:00".
    return typeof iso === "string" && iso.length >= 16 ? iso.slice(11, 16) : "";
  }

  function post(path, body) {
    return fetch(api + path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {status: response.status, data: data || {}};
      });
    });
  }
  function failure(answer) {
    if (answer.status === 401) { return texts.signed_out; }
    if (answer.status === 403) {
      return answer.data.error === "csrf_failed" ? texts.signed_out : texts.forbidden;
    }
    return texts.failed;
  }

  // ---- checking in -----------------------------------------------------------------------
  function checkIn(raw) {
    var code = String(raw || "").replace(/\s+/g, "").toUpperCase();
    if (!code || busy) { return; }
    busy = true;
    post("/checkins", {code: code}).then(function (answer) {
      var data = answer.data;
      if (answer.status === 200 && data.registration) {
        show("checked_in", data.registration.name, data.registration.code);
        showCounts(data);
        input.value = "";
      } else if (data.error === "already_checked_in") {
        show("already_checked_in", data.name, code, localTime(data.checked_in_at));
        input.select();
      } else if (data.error && texts.outcomes[data.error]) {
        show(data.error, "", code);
        input.select();
      } else if (answer.status === 422) {
        show("ticket_not_found", "", code);  // longer than any code
        input.select();
      } else {
        problem(failure(answer));
      }
    }).catch(function () {
      problem(texts.network);
    }).then(function () {
      busy = false;
    });
  }

  form.addEventListener("submit", function (submitted) {
    submitted.preventDefault();
    checkIn(input.value);
    if (!scanning()) { input.focus(); }
  });

  // ---- walk-ins --------------------------------------------------------------------------
  var walkInForm = document.getElementById("walk-in-form");
  function walkInError(field, message) {
    var old = walkInForm.querySelectorAll(".js-error");
    for (var i = 0; i < old.length; i++) { old[i].parentNode.removeChild(old[i]); }
    ["name", "phone"].forEach(function (name) {
      document.getElementById("walk-in-" + name).removeAttribute("aria-invalid");
    });
    if (!message) { return; }
    var note = el("p", "field-error js-error", message);
    note.setAttribute("role", "alert");
    if (field) {
      var target = document.getElementById("walk-in-" + field);
      target.setAttribute("aria-invalid", "true");
      target.parentNode.insertBefore(note, target.nextSibling);
      target.focus();
    } else {
      walkInForm.insertBefore(note, walkInForm.firstChild);
    }
  }
  if (walkInForm) {
    walkInForm.addEventListener("submit", function (submitted) {
      submitted.preventDefault();
      var name = document.getElementById("walk-in-name");
      var phone = document.getElementById("walk-in-phone");
      if (!name.value.trim()) {
        walkInError("name", texts.walk_in.invalid_name.text);
        return;
      }
      post("/walk-ins", {name: name.value.trim().slice(0, 50), phone: phone.value.trim()})
        .then(function (answer) {
          var data = answer.data;
          if (answer.status === 201 && data.registration) {
            walkInError("", "");
            show("walk_in", data.registration.name, data.registration.code);
            showCounts(data);
            walkInForm.reset();
            result.focus();
          } else if (data.error && texts.walk_in[data.error]) {
            walkInError(texts.walk_in[data.error].field, texts.walk_in[data.error].text);
            refresh();
          } else if (answer.status === 422) {
            var bad = (data.fields && data.fields[0] && data.fields[0].field) || "name";
            var key = bad === "phone" ? "invalid_phone" : "invalid_name";
            walkInError(texts.walk_in[key].field, texts.walk_in[key].text);
          } else {
            walkInError("", failure(answer));
          }
        })
        .catch(function () { walkInError("", texts.network); });
    });
  }

  // ---- scanning: the rear camera, frames into a canvas, jsQR ------------------------------
  var actions = document.getElementById("scan-actions");
  var startButton = document.getElementById("scan-start");
  var stopButton = document.getElementById("scan-stop");
  var photo = document.getElementById("scan-photo");
  var photoLabel = document.getElementById("scan-photo-label");
  var box = document.getElementById("scanner");
  var video = document.getElementById("scanner-video");
  var canvas = document.getElementById("scanner-canvas");
  var context = canvas.getContext("2d", {willReadFrequently: true});
  var stream = null;
  var frame = 0;
  var lastCode = "";
  var lastSeen = 0;
  var decoder = null;

  function scanning() { return stream !== null; }
  function say(message) { status.textContent = message || ""; }

  function loadDecoder() {
    if (window.jsQR) { return Promise.resolve(window.jsQR); }
    if (!decoder) {
      decoder = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = root.getAttribute("data-jsqr");
        script.onload = function () { resolve(window.jsQR); };
        script.onerror = function () { decoder = null; reject(new Error("jsQR")); };
        document.head.appendChild(script);
      });
    }
    return decoder;
  }

  function found(data) {
    var code = String(data || "").replace(/\s+/g, "").toUpperCase().slice(0, 20);
    var now = Date.now();
    var repeat = code === lastCode && now - lastSeen < REPEAT_MS;
    lastSeen = now;  // a code held in view stays one scan until it has been away a while
    if (!code || repeat) { return; }
    lastCode = code;
    input.value = code;
    if (navigator.vibrate) { navigator.vibrate(80); }
    checkIn(code);
  }

  function decode(width, height, inversion) {
    var image = context.getImageData(0, 0, width, height);
    var qr = window.jsQR(image.data, width, height, {inversionAttempts: inversion});
    return qr && qr.data ? qr.data : "";
  }

  function tick() {
    if (!stream) { return; }
    if (video.readyState >= video.HAVE_ENOUGH_DATA && !busy && video.videoWidth) {
      // A phone camera gives 1080p; jsQR reads a 640-pixel frame as well and far faster.
      var scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
      var width = Math.round(video.videoWidth * scale);
      var height = Math.round(video.videoHeight * scale);
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
      context.drawImage(video, 0, 0, width, height);
      var data = decode(width, height, "dontInvert");
      if (data) { found(data); }
    }
    frame = window.requestAnimationFrame(tick);
  }

  function stopScan(message) {
    if (frame) { window.cancelAnimationFrame(frame); frame = 0; }
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    box.hidden = true;
    startButton.hidden = false;
    say(message);
  }

  function offerPhoto(message) {
    photoLabel.hidden = false;
    say(message);
  }

  function startScan() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      offerPhoto(texts.camera_unavailable);
      return;
    }
    var wanted = {video: {facingMode: {ideal: "environment"}}, audio: false};
    Promise.all([loadDecoder(), navigator.mediaDevices.getUserMedia(wanted)])
      .then(function (ready) {
        stream = ready[1];
        video.srcObject = stream;
        box.hidden = false;
        startButton.hidden = true;
        return video.play();
      })
      .then(function () {
        say(texts.scanning);
        // The counter, the result and the picture together on one phone screen.
        var counter = root.querySelector(".checkin-counter");
        window.scrollTo(0, counter.getBoundingClientRect().top + window.pageYOffset - 8);
        frame = window.requestAnimationFrame(tick);
      })
      .catch(function (error) {
        var denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
        stopScan("");
        offerPhoto(denied ? texts.camera_denied : texts.camera_failed);
      });
  }

  // A still photo (the fallback where the live camera is not allowed) goes the same way.
  function scanImage(source) {
    return loadDecoder().then(function () {
      return new Promise(function (resolve, reject) {
        var image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = reject;
        image.src = source;
      });
    }).then(function (image) {
      var scale = Math.min(1, 1024 / Math.max(image.naturalWidth, image.naturalHeight));
      canvas.width = Math.round(image.naturalWidth * scale);
      canvas.height = Math.round(image.naturalHeight * scale);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      var data = decode(canvas.width, canvas.height, "attemptBoth");
      if (data) {
        lastCode = "";  // a photo is taken on purpose: never swallowed as a repeat
        say("");
        found(data);
      } else {
        say(texts.no_qr);
      }
      return data;
    }).catch(function () {
      say(texts.no_qr);
      return "";
    });
  }

  actions.hidden = false;
  startButton.addEventListener("click", startScan);
  stopButton.addEventListener("click", function () {
    stopScan(texts.scan_stopped);
    input.focus();
  });
  photo.addEventListener("change", function () {
    var file = photo.files && photo.files[0];
    if (!file) { return; }
    var url = URL.createObjectURL(file);
    scanImage(url).then(function () {
      URL.revokeObjectURL(url);
      photo.value = "";
    });
  });
  window.addEventListener("pagehide", function () { stopScan(""); });
})();
