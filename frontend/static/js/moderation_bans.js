/* Bans in the host's console (console/live.html #ban-panel), in place: every message, held or
   approved, offers 禁言… (it chooses that message in the ban form and puts the cursor on the
   reason); the form is sent by fetch to the same address as without script, answered in JSON
   (streaming.bans decides: a reason, a ban or a 5 or 10 minute timeout), and the list of bans
   that run is redrawn from the answer, its minutes left counting down. The banned viewer's
   messages leave the queue and the approved list by the hosts' socket (moderation.js). Without
   this file the form posts and the page reloads. */
(function () {
  "use strict";
  var k = window.kaifangModeration;
  var form = document.getElementById("ban-form");
  if (!k || !form || !window.FormData) { return; }

  var root = k.root, texts = k.texts, el = k.el, say = k.say;
  var choice = document.getElementById("ban-message");
  var reason = document.getElementById("ban-reason");
  var list = document.getElementById("ban-list");
  var none = document.getElementById("ban-none");
  var TICK_MS = 15000;

  function leftText(seconds) {
    if (seconds === null || seconds === undefined || seconds === "") { return texts.ban_ever; }
    return texts.ban_left.replace("%(n)s", String(Math.max(1, Math.ceil(seconds / 60))));
  }

  // The bans that run: the answer's list, each item's end kept to count down.
  function showBans(rows) {
    list.textContent = "";
    rows.forEach(function (row) {
      var item = el("li");
      item.setAttribute("data-viewer", String(row.viewer_id));
      if (row.left_s !== null) {
        item.setAttribute("data-ends", String(Date.now() + row.left_s * 1000));
      }
      item.appendChild(el("span", "author", row.nickname));
      item.appendChild(document.createTextNode(" · "));
      item.appendChild(el("span", "ban-reason", row.reason));
      item.appendChild(document.createTextNode(" · "));
      item.appendChild(el("span", "ban-left", leftText(row.left_s)));
      list.appendChild(item);
    });
    none.hidden = rows.length > 0;
  }

  function tick() {
    Array.prototype.forEach.call(list.querySelectorAll("li[data-ends]"), function (item) {
      var left = (parseInt(item.getAttribute("data-ends"), 10) - Date.now()) / 1000;
      if (left <= 0) { item.remove(); return; }
      item.querySelector(".ban-left").textContent = leftText(left);
    });
    none.hidden = list.children.length > 0;
  }

  Array.prototype.forEach.call(list.querySelectorAll("li[data-left]"), function (item) {
    var left = item.getAttribute("data-left");
    if (left !== "") {
      item.setAttribute("data-ends", String(Date.now() + parseInt(left, 10) * 1000));
    }
  });

  // 禁言… on a message: that message in the form (an option is added for one the page
  // received after it was drawn), the cursor on the reason.
  function choose(id, author, words) {
    var value = String(parseInt(id, 10));
    var option = choice.querySelector('option[value="' + value + '"]');
    if (!option) {
      option = el("option", "", author + ": " + words.slice(0, 30));
      option.value = value;
      choice.appendChild(option);
    }
    choice.value = value;
    form.scrollIntoView({block: "nearest"});
    reason.focus();
  }

  function offer(item) {
    if (item.querySelector(".action-ban") || item.classList.contains("is-reply") ||
        item.classList.contains("is-removed")) { return; }
    var author = item.querySelector(".author");
    var words = item.querySelector(".queue-text, .approved-text");
    var button = el("button", "secondary queue-action action-ban", texts.ban);
    button.type = "button";
    var name = author ? author.textContent : "";
    button.setAttribute("aria-label", texts.ban_for.replace("%(author)s", name));
    button.addEventListener("click", function () {
      choose(item.getAttribute("data-id"), name, words ? words.textContent : "");
    });
    (item.querySelector(".queue-actions, .approved-actions") || item).appendChild(button);
  }

  function offerAll() {
    Array.prototype.forEach.call(
      document.querySelectorAll("#queue .queue-item, #approved li[data-id]"), offer);
  }

  // moderation.js redraws the queue and decorates approved messages: the buttons follow.
  new MutationObserver(offerAll).observe(root, {childList: true, subtree: true});
  offerAll();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var submit = form.querySelector('button[type="submit"]');
    var chosen = choice.value;  // the socket may redraw the choice before the answer comes
    submit.disabled = true;
    fetch(form.action, {method: "POST", credentials: "same-origin", body: new FormData(form),
                        headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (answer) {
          return {status: response.status, body: answer};
        });
      })
      .then(function (answer) {
        if (answer.status === 200) {
          showBans(answer.body.bans);
          reason.value = "";
          var gone = choice.querySelector('option[value="' + chosen + '"]');
          if (gone) { gone.remove(); }
          say(answer.body.message);
        } else {
          say(answer.body.message || texts.failed.replace("%(why)s", String(answer.status)),
              "error");
          reason.focus();
        }
      }, function () { say(texts.offline, "warn"); })
      .then(function () { submit.disabled = false; });
  });

  window.setInterval(tick, TICK_MS);
}());
