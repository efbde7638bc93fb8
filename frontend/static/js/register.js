// Progressive enhancement for registration and the ticket; every page works without it.
// The form: one submission per click, focus on the first field to fix.
// The ticket: a print button and a copy button for the manage link.
(function () {
  "use strict";

  var form = document.getElementById("register-form");
  if (form) {
    var submit = form.querySelector("button[type=submit]");
    var label = submit ? submit.textContent : "";
    form.addEventListener("submit", function (event) {
      if (form.dataset.sending === "1") {
        event.preventDefault(); // a second click would send the same registration again
        return;
      }
      form.dataset.sending = "1";
      if (submit) {
        submit.textContent = form.dataset.busy || label;
        submit.setAttribute("aria-disabled", "true");
        submit.disabled = true;
      }
    });
    // Back to a page kept by the browser: the form may be sent again.
    window.addEventListener("pageshow", function () {
      form.dataset.sending = "";
      if (submit) {
        submit.disabled = false;
        submit.removeAttribute("aria-disabled");
        submit.textContent = label;
      }
    });
    var invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) {
      // After the browser has scrolled to #register-form, which would take the focus away.
      window.addEventListener("load", function () {
        window.requestAnimationFrame(function () { invalid.focus(); });
      });
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
    var field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(function () {
        button.textContent = button.dataset.copied || label;
        setTimeout(function () { button.textContent = label; }, 2000);
      }, function () {
        field.select();
      });
    });
  });
}());
