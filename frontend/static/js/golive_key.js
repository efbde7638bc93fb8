// The go-live page's RTMP key for OBS and other encoders (console/golive.html): POST
// /api/events/{id}/ingest makes one ({rtmp_url, stream_key, expires_at}; a second call makes a
// new one and the old stops working), shown once with copy buttons; DELETE revokes it. The key
// stays in this page only: it is never stored or sent anywhere else.
(function () {
  "use strict";
  var root = document.getElementById("golive");
  if (!root) return;
  var texts = JSON.parse(root.dataset.text);
  var url = "/api/events/" + root.dataset.eventId + "/ingest";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var box = document.getElementById("golive-key");
  var make = document.getElementById("golive-key-make");
  var revoke = document.getElementById("golive-key-revoke");
  var said = document.getElementById("golive-key-notice");
  var keyState = document.getElementById("golive-key-state");

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function ask(method) {
    return fetch(url, {method: method, credentials: "same-origin",
                       headers: {Accept: "application/json", "X-CSRF-Token": csrf}})
      .then(function (response) {
        if (response.status === 204) return {};
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok) {
            throw new Error(texts.errors[answer.error] || answer.message || answer.error
                            || response.status);
          }
          return answer;
        });
      });
  }

  make.addEventListener("click", function () {
    make.disabled = true;
    ask("POST").then(function (answer) {
      document.getElementById("golive-rtmp-url").value = answer.rtmp_url || "";
      document.getElementById("golive-stream-key").value = answer.stream_key || "";
      var expires = answer.expires_at ? new Date(answer.expires_at) : null;
      document.getElementById("golive-key-expires").textContent =
        expires ? expires.toLocaleString(document.documentElement.lang || undefined) : "–";
      box.hidden = false;
      revoke.hidden = false;
      keyState.hidden = true;
      make.textContent = texts.rotate;
      said.textContent = texts.keyShown;
    }).catch(function (error) {
      said.textContent = fill(texts.keyFailed, {why: error.message});
    }).then(function () { make.disabled = false; });
  });

  revoke.addEventListener("click", function () {
    revoke.disabled = true;
    ask("DELETE").then(function () {
      box.hidden = true;
      revoke.hidden = true;
      document.getElementById("golive-stream-key").value = "";
      said.textContent = texts.keyRevoked;
    }).catch(function (error) {
      said.textContent = fill(texts.keyFailed, {why: error.message});
    }).then(function () { revoke.disabled = false; });
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      field.select();
      var done = function () { said.textContent = texts.copied; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          said.textContent = texts.copyFailed;
        });
      } else {
        said.textContent = document.execCommand("copy") ? texts.copied : texts.copyFailed;
      }
    });
  });
}());
