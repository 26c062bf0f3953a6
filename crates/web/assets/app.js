// Paybox pages work without this script; it adds progress feedback only.
// - A form being submitted disables its buttons and says it is working (no double payment).
// - `[data-refresh]` reloads the page after that many seconds (a payment being confirmed).
// - `[data-live-since]` counts a call's duration, and `[data-live-cost]` its cost so far.
// - `form[data-confirm]` asks before submitting.
"use strict";
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
      window.setTimeout(function () { button.disabled = true; }, 0);
      if (button.hasAttribute("data-busy")) { button.textContent = button.getAttribute("data-busy"); }
    });
  });

  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    var seconds = parseInt(refresh.getAttribute("data-refresh"), 10) || 3;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function money(minor, exponent, symbol) {
    var text = (minor / Math.pow(10, exponent)).toFixed(exponent);
    return symbol + text.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  var live = document.querySelectorAll("[data-live-since]");
  if (live.length) {
    var tick = function () {
      live.forEach(function (element) {
        var since = Date.parse(element.getAttribute("data-live-since"));
        var elapsed = Math.max(0, Math.floor((Date.now() - since) / 1000));
        element.textContent = Math.floor(elapsed / 60) + ":" + two(elapsed % 60);
        var cost = document.getElementById(element.getAttribute("data-cost-id"));
        if (cost) {
          var minutes = Math.max(1, Math.ceil(elapsed / 60));
          var rate = parseInt(cost.getAttribute("data-rate-minor"), 10);
          cost.textContent = money(minutes * rate, parseInt(cost.getAttribute("data-exponent"), 10), cost.getAttribute("data-symbol"));
        }
      });
    };
    tick();
    window.setInterval(tick, 1000);
  }
})();
