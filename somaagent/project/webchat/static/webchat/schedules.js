/* SomaSchedules: the "Schedules" panel: your schedules, their next run and state, on/off,
   run now, delete, each one's run history, and a form to add one (a cron or every N minutes,
   in your time zone; runs into a new chat each time or the open one; an optional end; what a
   run missed while the system was down does).
   A schedule that paused itself (its runs kept failing) is told above the conversation when
   the chat opens and while it stays open, until it is turned on again or deleted. */
(function (root) {
  "use strict";

  var V = root.SomaView;
  var Http = root.SomaHttp;
  var h = V.h;
  var $ = function (id) {
    return document.getElementById(id);
  };

  function localTime(iso) {
    if (!iso) return "—";
    try {
      return new Date(iso).toLocaleString();
    } catch (e) {
      return iso;
    }
  }

  function when(s) {
    var text = s.cron
      ? "cron " + s.cron + " (" + s.timezone + ")"
      : "every " + Math.round((s.interval_seconds || 0) / 60) + " min";
    text += s.session_id ? (s.session_id === openChat() ? " · into this chat" : " · into one chat") : " · a new chat each run";
    if (s.ends_at) text += " · ends " + localTime(s.ends_at);
    return text;
  }

  /* The chat open in this page (/c/<id>/), or null. */
  function openChat() {
    var m = /^\/c\/([0-9a-fA-F-]{36})\/?$/.exec(root.location.pathname);
    return m ? m[1] : null;
  }

  function runLine(r) {
    var text = localTime(r.due_at) + (r.manual ? " (run now)" : "") + " — " + r.status;
    if (r.tokens) text += ", " + r.tokens + " tokens";
    if (r.started_at) text += ", started " + localTime(r.started_at);
    if (r.ended_at) text += ", ended " + localTime(r.ended_at);
    if (r.error) text += ": " + r.error;
    var parts = [h("span", { text: text })];
    if (r.session_id) {
      parts.push(" ");
      parts.push(h("a", { href: "/c/" + encodeURIComponent(r.session_id) + "/", text: "Open the chat" }));
    }
    return h("li", {}, parts);
  }

  function errorText(res) {
    var e = res.data && res.data.error;
    return e ? e.message : "Something went wrong (" + res.status + ").";
  }

  function SomaSchedules() {
    this.dialog = $("schedules");
  }

  SomaSchedules.prototype.open = function () {
    $("schedule-tz").value = $("schedule-tz").value || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    var here = $("schedule-target").querySelector('option[value="this"]');
    here.disabled = !openChat();
    if (here.disabled) $("schedule-target").value = "new";
    if (this.dialog.showModal) this.dialog.showModal();
    else this.dialog.setAttribute("open", "");
    return this.load();
  };

  SomaSchedules.prototype.close = function () {
    if (this.dialog.close) this.dialog.close();
    else this.dialog.removeAttribute("open");
  };

  SomaSchedules.prototype.say = function (text) {
    $("schedule-error").textContent = text || "";
  };

  SomaSchedules.prototype.load = function () {
    var self = this;
    return Http.api("GET", "/v1/schedules").then(function (res) {
      if (!res.ok) return self.say(errorText(res));
      self.render(res.data.schedules);
    });
  };

  var NOTICE_POLL_MS = 120000;

  /* The paused ones, told without opening the panel. */
  SomaSchedules.prototype.notice = function (schedules) {
    var paused = schedules.filter(function (s) {
      return s.paused_reason && s.yours; // told to the one who made it (an admin lists the tenant's)
    });
    var text = paused.length === 1
      ? "Your schedule “" + paused[0].name + "” was paused: " + paused[0].paused_reason
      : paused.length + " of your schedules were paused: " +
        paused.map(function (s) { return "“" + s.name + "”"; }).join(", ") + ".";
    $("schedule-notice-text").textContent = paused.length ? text : "";
    $("schedule-notice").hidden = paused.length === 0;
  };

  SomaSchedules.prototype.render = function (schedules) {
    var self = this;
    this.notice(schedules);
    var list = $("schedule-list");
    $("schedules-empty").hidden = schedules.length > 0;
    list.replaceChildren.apply(
      list,
      schedules.map(function (s) {
        var state = s.paused_reason
          ? h("p", { className: "schedule-paused", role: "note", text: s.paused_reason })
          : h("p", { className: "muted", text: s.enabled ? "Next run: " + localTime(s.next_run_at) : "Off" });
        var toggle = h("button", { type: "button", text: s.enabled ? "Turn off" : "Turn on" });
        toggle.addEventListener("click", function () {
          self.change(s, { enabled: !s.enabled });
        });
        var now = h("button", { type: "button", text: "Run now" });
        now.addEventListener("click", function () {
          Http.api("POST", "/v1/schedules/" + encodeURIComponent(s.id) + "/run").then(function (res) {
            self.say(res.ok ? "“" + s.name + "” will run in a few seconds." : errorText(res));
          });
        });
        var runs = h("ol", { className: "schedule-runs", "aria-label": "Runs of " + s.name, hidden: "" });
        var history = h("button", { type: "button", text: "History", "aria-expanded": "false" });
        history.addEventListener("click", function () {
          if (!runs.hidden) {
            runs.hidden = true;
            history.setAttribute("aria-expanded", "false");
            return;
          }
          Http.api("GET", "/v1/schedules/" + encodeURIComponent(s.id) + "/runs?limit=20").then(function (res) {
            if (!res.ok) return self.say(errorText(res));
            var items = res.data.runs.map(runLine);
            if (!items.length) items = [h("li", { className: "muted", text: "No runs yet." })];
            runs.replaceChildren.apply(runs, items);
            runs.hidden = false;
            history.setAttribute("aria-expanded", "true");
          });
        });
        var remove = h("button", { type: "button", text: "Delete" });
        remove.addEventListener("click", function () {
          if (!root.confirm("Delete the schedule “" + s.name + "” and its history?")) return;
          Http.api("DELETE", "/v1/schedules/" + encodeURIComponent(s.id)).then(function () {
            self.load();
          });
        });
        return h("li", { className: "schedule", "data-schedule-id": s.id }, [
          h("strong", { text: s.name }),
          h("span", { className: "muted", text: " · " + when(s) }),
          h("p", { className: "schedule-message plain", text: s.message }),
          state,
          h("div", { className: "schedule-actions" }, [toggle, now, history, remove]),
          runs,
        ]);
      })
    );
  };

  /* PUT takes the whole schedule: send what it has, with the change. */
  SomaSchedules.prototype.change = function (s, changes) {
    var self = this;
    var body = Object.assign(
      {
        name: s.name,
        message: s.message,
        timezone: s.timezone,
        session_id: s.session_id,
        persona_id: s.persona_id,
        ends_at: s.ends_at,
        missed: s.missed,
        enabled: s.enabled,
      },
      s.cron ? { cron: s.cron } : { interval_seconds: s.interval_seconds },
      changes
    );
    return Http.api("PUT", "/v1/schedules/" + encodeURIComponent(s.id), body).then(function (res) {
      self.say(res.ok ? "" : errorText(res));
      return self.load();
    });
  };

  SomaSchedules.prototype.add = function () {
    var self = this;
    var body = {
      name: $("schedule-name").value.trim(),
      message: $("schedule-message").value,
      timezone: $("schedule-tz").value.trim() || "UTC",
    };
    var every = $("schedule-every").value;
    if (every === "cron") body.cron = $("schedule-cron").value.trim();
    else body.interval_seconds = parseInt(every, 10);
    if ($("schedule-target").value === "this" && openChat()) body.session_id = openChat();
    var ends = $("schedule-ends").value; // the browser's local time
    if (ends) body.ends_at = new Date(ends).toISOString();
    body.missed = $("schedule-missed").value;
    return Http.api("POST", "/v1/schedules", body).then(function (res) {
      if (!res.ok) return self.say(errorText(res));
      self.say("Saved: the first run is " + localTime(res.data.next_run_at) + ".");
      $("schedule-form").reset();
      return self.load();
    });
  };

  SomaSchedules.prototype.bind = function () {
    var self = this;
    $("open-schedules").addEventListener("click", function () {
      self.open();
    });
    $("close-schedules").addEventListener("click", function () {
      self.close();
    });
    $("schedule-notice-open").addEventListener("click", function () {
      self.open();
    });
    var check = function () {
      Http.api("GET", "/v1/schedules").then(function (res) {
        if (res.ok) self.notice(res.data.schedules);
      });
    };
    check();
    root.setInterval(check, NOTICE_POLL_MS);
    $("schedule-every").addEventListener("change", function () {
      $("schedule-cron-row").hidden = $("schedule-every").value !== "cron";
    });
    $("schedule-form").addEventListener("submit", function (e) {
      e.preventDefault();
      self.add();
    });
  };

  root.SomaSchedules = SomaSchedules;
  document.addEventListener("DOMContentLoaded", function () {
    if ($("schedules")) new SomaSchedules().bind();
  });
})(window);
