// Signoff's dashboard script: small enhancements of pages that work without it.
// - forms with data-busy show progress and cannot be sent twice;
// - a schedule field previews its schedule in words;
// - pages with data-live-url follow a Server-Sent Events stream and refresh their live regions;
// - forms with data-confirm ask before they act (without this script the server asks instead);
// - <time data-local> shows the viewer's local time and how long ago.
"use strict";

// Destructive forms: ask here, and tell the server it was asked (confirmed=1). Without this
// script the form arrives unconfirmed and the server answers with a page that asks.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.dataset.confirm === undefined) return;
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation(); // no "busy" state for a form that is not sent
    return;
  }
  let field = form.querySelector("input[name=confirmed]");
  if (!field) {
    field = document.createElement("input");
    field.type = "hidden";
    field.name = "confirmed";
    form.appendChild(field);
  }
  field.value = "1";
}, true);

// Times: the server writes UTC; the browser knows the viewer's timezone.
const relative = window.Intl && Intl.RelativeTimeFormat
  ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
  : null;
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function ago(moment) {
  if (!relative) return "";
  const seconds = (moment.getTime() - Date.now()) / 1000;
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"]];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return relative.format(Math.round(value), "year");
}

function localiseTimes(root) {
  root.querySelectorAll("time[data-local][datetime]").forEach((element) => {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    if (!element.dataset.utc) element.dataset.utc = element.textContent;
    element.title = element.dataset.utc;
    const when = ago(moment);
    element.textContent = when ? `${absolute.format(moment)} (${when})` : absolute.format(moment);
  });
}

// Forms: while the POST is in flight, the clicked button says what is happening.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.dataset.busy === undefined) return;
  const button = event.submitter || form.querySelector("button[type=submit]");
  // After the event: a button disabled now would drop its name/value from the form data.
  setTimeout(() => {
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    if (button && form.dataset.busy) button.textContent = form.dataset.busy;
    form.querySelectorAll(".busy-note").forEach((note) => { note.hidden = false; });
    form.setAttribute("aria-busy", "true");
  }, 0);
});

// Schedule preview: "At 09:00, only on Monday (Europe/Paris). Next run: …"
function setUpSchedulePreview() {
  const preview = document.getElementById("schedule-preview");
  const schedule = document.getElementById("schedule");
  const timezone = document.getElementById("timezone");
  if (!preview || !schedule || !timezone) return;
  if (timezone.dataset.guess !== undefined && timezone.value === "UTC") {
    const guess = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (guess) timezone.value = guess;
  }
  let timer = 0;
  let asked = 0;
  const update = () => {
    const query = new URLSearchParams({ schedule: schedule.value, timezone: timezone.value });
    const ticket = ++asked;
    fetch(`${preview.dataset.previewUrl}?${query}`, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((answer) => {
        if (!answer || ticket !== asked) return; // an older answer arriving late
        preview.textContent = answer.text;
        preview.classList.toggle("error", !answer.valid);
        schedule.setAttribute("aria-invalid", String(!answer.valid));
      })
      .catch(() => {});
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(update, 250); };
  schedule.addEventListener("input", soon);
  timezone.addEventListener("input", soon);
  timezone.addEventListener("change", soon);
  // At once when there is something to say: a guessed timezone, or a schedule typed before this
  // script ran (it is deferred) or restored by the browser, whose input events came too early.
  if (timezone.value !== "UTC" || schedule.value.trim() || !preview.textContent.trim()) update();
}

// Live regions: elements with an id and data-live are replaced by their fresh copy.
function userIsEditing(region) {
  if (region.contains(document.activeElement) && document.activeElement !== document.body) {
    return true;
  }
  return [...region.querySelectorAll("textarea, input")].some(
    (field) => field.value !== field.defaultValue,
  );
}

function setUpLiveUpdates() {
  const url = document.body.dataset.liveUrl;
  if (!url || !window.EventSource) return;
  let shown = document.body.dataset.liveVersion;
  let latest = shown;
  let busy = false;
  const source = new EventSource(url);

  const sync = async () => {
    if (busy || latest === shown) return;
    busy = true;
    const target = latest;
    try {
      const response = await fetch(window.location.href, {
        headers: { Accept: "text/html" },
        cache: "no-store",
      });
      if (!response.ok || response.redirected) {
        source.close(); // signed out, or the page is gone: stop following
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach((region) => {
        const update = fresh.getElementById(region.id);
        if (!update || userIsEditing(region)) return;
        region.querySelectorAll("details[id][open]").forEach((open) => {
          const twin = update.querySelector(`#${CSS.escape(open.id)}`);
          if (twin) twin.open = true;
        });
        localiseTimes(update);
        // The content changes in place: a region with aria-live stays the same element, so
        // screen readers announce what changed in it (a replaced element is not announced).
        region.replaceChildren(...[...update.childNodes].map((node) => document.adoptNode(node)));
      });
      shown = target;
    } catch {
      // A network hiccup: the next event tries again.
    } finally {
      busy = false;
    }
    if (shown === target) sync(); // it may have changed again meanwhile
  };

  source.addEventListener("open", () => {
    document.querySelectorAll(".live-note").forEach((note) => { note.hidden = false; });
  });
  source.addEventListener("message", (event) => {
    latest = event.data;
    sync();
  });
}

setUpSchedulePreview();
setUpLiveUpdates();
localiseTimes(document);
setInterval(() => localiseTimes(document), 30000);
