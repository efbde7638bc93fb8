// The recordings panel (console/_recordings.html): a resumable upload in chunks with a progress
// bar, then the transcode job's progress until it is done. A dropped connection is retried from
// the offset the server holds; choosing the same file again after a reload goes on from there.
(function () {
  "use strict";
  var panel = document.querySelector(".recordings");
  if (!panel) return;
  var texts = JSON.parse(panel.dataset.text || "{}");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var status = panel.querySelector(".recording-status");
  var CHUNK = 8 * 1024 * 1024;

  function say(text) { if (status) status.textContent = text; }
  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); })
      .replace(/%%/g, "%");
  }
  function api(method, url, body, headers) {
    var all = {"X-CSRF-Token": csrf, Accept: "application/json"};
    Object.keys(headers || {}).forEach(function (k) { all[k] = headers[k]; });
    return fetch(url, {method: method, body: body, headers: all, credentials: "same-origin"});
  }
  function problem(response) {
    return response.json().then(function (answer) {
      var error = new Error(answer.message || response.statusText);
      error.answer = answer;
      error.status = response.status;
      throw error;
    }, function () {
      var error = new Error(response.statusText);
      error.status = response.status;
      throw error;
    });
  }
  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }

  // One chunk, with its progress: XMLHttpRequest reports upload progress, fetch does not.
  function sendChunk(url, offset, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      request.open("PATCH", url);
      request.setRequestHeader("X-CSRF-Token", csrf);
      request.setRequestHeader("Upload-Offset", String(offset));
      request.setRequestHeader("Content-Type", "application/offset+octet-stream");
      request.upload.onprogress = function (event) { onProgress(offset + event.loaded); };
      request.onload = function () {
        if (request.status === 204) resolve(parseInt(request.getResponseHeader("Upload-Offset"), 10));
        else {
          var answer = {};
          try { answer = JSON.parse(request.responseText); } catch (e) { /* not JSON */ }
          var error = new Error(answer.message || String(request.status));
          error.status = request.status;
          error.answer = answer;
          reject(error);
        }
      };
      request.onerror = function () { reject(new Error("network")); };
      request.send(blob);
    });
  }

  var form = panel.querySelector(".recording-upload");
  var bar = panel.querySelector("#recording-upload-bar");
  function key(file) { return "kaifang-upload:" + panel.dataset.eventId + ":" + file.name + ":" +
    file.size + ":" + file.lastModified; }

  function upload(file) {
    var remembered = window.localStorage.getItem(key(file));
    var opened = remembered
      ? api("GET", remembered).then(function (r) { return r.ok ? r.json() : null; })
      : Promise.resolve(null);
    return opened.then(function (found) {
      if (found && found.job_id === null) return found;
      return api("POST", "/api/events/" + panel.dataset.eventId + "/uploads",
                 JSON.stringify({size: file.size}), {"Content-Type": "application/json"})
        .then(function (r) { return r.ok ? r.json() : problem(r); });
    }).then(function (state) {
      window.localStorage.setItem(key(file), state.url);
      var offset = state.offset;
      var failures = 0;
      function progress(done) {
        var percent = Math.floor(done / file.size * 100);
        bar.value = percent;
        say(fill(texts.uploading, {percent: percent}));
      }
      function next() {
        if (offset >= file.size) return Promise.resolve();
        return sendChunk(state.url, offset, file.slice(offset, offset + CHUNK), progress)
          .then(function (moved) { offset = moved; failures = 0; return next(); })
          .catch(function (error) {
            if (error.status === 409 && error.answer && typeof error.answer.offset === "number") {
              offset = error.answer.offset; // the server holds more (or less): go on from there
              return next();
            }
            if (error.status && error.status < 500 && error.status !== 408) throw error;
            failures += 1;
            if (failures > 8) throw error;
            say(texts.retrying);
            return sleep(Math.min(30000, 1000 * Math.pow(2, failures))).then(function () {
              return api("GET", state.url).then(function (r) { return r.json(); })
                .then(function (now) { offset = now.offset; return next(); },
                      function () { return next(); });
            });
          });
      }
      progress(offset);
      return next().then(function () {
        say(texts.checking);
        return api("POST", state.url + "/recording").then(function (r) {
          return r.ok ? r.json() : problem(r);
        });
      }).then(function (answer) {
        window.localStorage.removeItem(key(file));
        return answer;
      });
    });
  }

  // The transcode's progress: read every second while it runs, the bar eased to each reading
  // (no jumps), the percentage and, once it has moved, the time it should still take.
  function ease(progressBar, to) {
    if (!progressBar) return;
    var from = parseFloat(progressBar.value) || 0;
    var steps = 8;
    var step = 0;
    var timer = window.setInterval(function () {
      step += 1;
      progressBar.value = from + (to - from) * step / steps;
      if (step >= steps) window.clearInterval(timer);
    }, 80);
  }

  function left(seen, progress) {
    // From the first reading of the running job: how fast it went, so how long it still takes.
    if (!seen || progress <= seen.progress) return "";
    var elapsed = (Date.now() - seen.at) / 1000;
    if (elapsed < 2) return "";
    var seconds = Math.max(1, Math.round(elapsed / (progress - seen.progress) * (1 - progress)));
    return seconds < 90 ? fill(texts.etaSeconds, {seconds: seconds})
      : fill(texts.etaMinutes, {minutes: Math.round(seconds / 60)});
  }

  function follow(jobId, item, seen) {
    return api("GET", "/api/jobs/" + jobId).then(function (r) { return r.json(); })
      .then(function (job) {
        var percent = Math.floor(job.progress * 100);
        if (job.state === "running" && !seen) seen = {at: Date.now(), progress: job.progress};
        var eta = job.state === "running" ? left(seen, job.progress) : "";
        var shownText = percent + "%" + (eta ? " · " + eta : "");
        if (item) {
          ease(item.querySelector(".job-bar"), percent);
          var shown = item.querySelector(".job-percent");
          if (shown) shown.textContent = shownText;
        } else if (job.state === "queued") {
          say(texts.queued);
        } else {
          var label = panel.querySelector('label[for="recording-upload-bar"]');
          if (label && label.textContent !== texts.transcodingBar) {
            label.textContent = texts.transcodingBar; // the upload's bar now shows the transcode
            bar.value = 0;
          }
          ease(bar, percent);
          say(fill(texts.transcoding, {percent: percent}) + (eta ? " · " + eta : ""));
        }
        if (job.state === "succeeded" || job.state === "failed") {
          window.location.reload();
          return;
        }
        return sleep(job.state === "running" ? 1000 : 2000).then(function () {
          return follow(jobId, item, seen);
        });
      });
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = form.querySelector('input[type="file"]');
      var file = input.files && input.files[0];
      if (!file) { say(texts.choose); input.focus(); return; }
      var button = form.querySelector("button");
      button.disabled = true;
      panel.querySelector(".recording-progress").hidden = false;
      upload(file).then(function (answer) {
        say(fill(texts.queued, {}));
        return follow(answer.job_id, null);
      }).catch(function (error) {
        var code = error.answer && error.answer.error;
        say(texts.errors[code] || fill(texts.failed, {why: error.message}));
        button.disabled = false;
      });
    });
  }

  Array.prototype.forEach.call(panel.querySelectorAll(".recording-item"), function (item) {
    var state = item.dataset.state;
    if (item.dataset.jobId && (state === "queued" || state === "running")) {
      follow(item.dataset.jobId, item);
    }
  });

  var tracks = panel.querySelector(".track-upload");
  if (tracks) {
    tracks.addEventListener("submit", function (event) {
      event.preventDefault();
      var said = panel.querySelector(".track-status");
      api("POST", "/api/events/" + panel.dataset.eventId + "/tracks", new FormData(tracks))
        .then(function (r) { return r.ok ? r.json() : problem(r); })
        .then(function () { window.location.reload(); })
        .catch(function (error) {
          var code = error.answer && error.answer.error;
          said.textContent = texts.errors[code] || fill(texts.failed, {why: error.message});
        });
    });
  }
}());
