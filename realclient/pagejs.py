"""What runs inside the page before the app's own scripts (Playwright init scripts).

The console is counted inside the page, by message template with a bounded sample, never streamed
over the DevTools protocol: ImageCanvas logs about 2,500 render-loop lines a second, and streaming
them cost most of a core and delayed every other event by seconds. Uploads are recorded where the
page makes them (``XMLHttpRequest`` and ``fetch`` with a ``FormData`` body: its ``hash`` field, its
file's size, when it was sent and answered, its status), so each image's upload is known by its hash.
Each template's first and last time is kept too: where the page's stages begin and end (its last
"Hash calculated", its first "Deferring full image load"). Long tasks (over 50 ms) are summed: how much
of the drop the page's main thread was blocked; and summed per ``BUSY_BUCKET_MS`` of the clock
(``busy``), so a drop's busy time can be read beside what the page had uploaded by then (the frame
feedback of ``individual``'s fc1316b set). What held the thread is read off the Long Animation Frames API:
each long frame's time in its scripts (by invoker type, file and function, or the invoker with its element's
attributes cut: ``IMG.onload``, not one key per image), in rendering (from its ``renderStart``: style, layout,
paint; the app's own drawing in ``requestAnimationFrame`` is a script) and otherwise, summed per
``FRAME_BUCKET_S`` (``frameWork``): whether a page's long tasks are the drop's own steps or its canvas's
drawing.
Socket.IO event frames are timed where the page sends and handles them (its ``WebSocket``): an
operation's latency as the page lives it, its busy main thread included, which is what its own 5 s
timeout measures (the DevTools protocol's frame events reach the harness late when the page is busy).
"""

from __future__ import annotations

BUSY_BUCKET_S = 10
"""The page's busy time is summed per this many seconds of the clock."""
FRAME_BUCKET_S = 60
"""The page's long animation frames are summed per this many seconds, by what did the work ..."""
FRAME_KEYS = 1000
"""... keeping at most this many (minute, source) pairs apart; the rest are summed as ``script: (more)``: a
page's functions are few, but an invoker may name an element."""

RECORDER = r"""
(() => {
  const BUSY_BUCKET_MS = __BUSY_BUCKET_MS__;
  if (window.__bb) return;
  const bb = window.__bb = {console: new Map(), consoleTimes: new Map(), sample: [], uploads: [], longTaskMs: 0,
                            longTasks: 0, busy: {}};
  const SAMPLE = 5000, PER_TEMPLATE = 25;
  const template = s => s.replace(/[0-9a-f]{8,}/gi, '#').replace(/\d+(\.\d+)?/g, 'N').slice(0, 100);
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    console[level] = function (...args) {
      let text;
      try { text = args.map(a => typeof a === 'string' ? a : (a && a.message) || String(a)).join(' '); }
      catch (e) { text = '?'; }
      const key = level + ': ' + template(text);
      bb.console.set(key, (bb.console.get(key) || 0) + 1);
      const now = Date.now(), seen = bb.consoleTimes.get(key);
      if (seen) seen[1] = now; else bb.consoleTimes.set(key, [now, now]);
      if (bb.sample.length < SAMPLE && (level === 'error' || level === 'warn' || bb.console.get(key) <= PER_TEMPLATE))
        bb.sample.push([now, level, text.slice(0, 300)]);
    };
  }
  const formInfo = body => {
    if (!(body instanceof FormData)) return null;
    let bytes = 0;
    for (const [, value] of body.entries()) if (value instanceof Blob) bytes += value.size;
    return {hash: body.get('hash'), bytes};
  };
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.__bb = {method, url: String(url)};
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) {
    const info = formInfo(body);
    if (info && this.__bb) {
      const record = {...this.__bb, ...info, sent: Date.now(), done: null, status: null};
      bb.uploads.push(record);
      this.addEventListener('loadend', () => { record.done = Date.now(); record.status = this.status; });
    }
    return send.call(this, body);
  };
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const info = formInfo(init && init.body);
    if (!info) return fetch0.apply(this, arguments);
    const record = {method: (init && init.method) || 'GET', url: String(input && input.url || input), ...info,
                    sent: Date.now(), done: null, status: null};
    bb.uploads.push(record);
    return fetch0.apply(this, arguments).then(
      r => { record.done = Date.now(); record.status = r.status; return r; },
      e => { record.done = Date.now(); record.status = 0; throw e; });
  };
  bb.frames = [];
  const FRAMES = 20000;
  const TIMED = /^42\d*\["(execute_operation|operation_ack|operation_rejected)"/;
  const keep = (dir, data) => {
    if (typeof data === 'string' && bb.frames.length < FRAMES && TIMED.test(data))
      bb.frames.push([Date.now(), dir, data]);
  };
  const NativeWebSocket = window.WebSocket;
  const Recorded = function (...args) {
    const ws = new NativeWebSocket(...args);
    const sendNative = ws.send.bind(ws);
    ws.send = data => { keep('out', data); return sendNative(data); };
    ws.addEventListener('message', event => keep('in', event.data));
    return ws;
  };
  Recorded.prototype = NativeWebSocket.prototype;
  for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Recorded[name] = NativeWebSocket[name];
  window.WebSocket = Recorded;
  try {
    new PerformanceObserver(list => {
      for (const entry of list.getEntries()) {
        bb.longTaskMs += entry.duration; bb.longTasks += 1;
        const bucket = Math.floor((performance.timeOrigin + entry.startTime) / BUSY_BUCKET_MS);
        const [ms, n] = bb.busy[bucket] || [0, 0];
        bb.busy[bucket] = [ms + entry.duration, n + 1];
      }
    }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
  bb.frameWork = {};
  let frameKeys = 0;
  const FRAME_KEYS = __FRAME_KEYS__, FRAME_BUCKET_MS = __FRAME_BUCKET_MS__;
  try {
    new PerformanceObserver(list => {
      for (const frame of list.getEntries()) {
        const bucket = Math.floor((performance.timeOrigin + frame.startTime) / FRAME_BUCKET_MS);
        const work = bb.frameWork[bucket] = bb.frameWork[bucket] || {};
        const add = (key, ms) => {
          if (!(key in work) && ++frameKeys > FRAME_KEYS) key = 'script: (more)';
          const [total, n] = work[key] || [0, 0];
          work[key] = [total + ms, n + 1];
        };
        // the frame's rendering (from renderStart) holds its requestAnimationFrame callbacks, kept as scripts
        const renderMs = frame.renderStart ? frame.startTime + frame.duration - frame.renderStart : 0;
        let scriptMs = 0, renderScriptMs = 0;
        for (const script of frame.scripts || []) {
          scriptMs += script.duration;
          if (frame.renderStart && script.startTime >= frame.renderStart) renderScriptMs += script.duration;
          const file = (script.sourceURL || '').split('/').pop().split('?')[0] || '?';
          const what = script.sourceFunctionName || String(script.invoker).replace(/\[[^\]]*\]/g, '');
          add(`script: ${script.invokerType} ${file} ${what}`.slice(0, 160), script.duration);
        }
        const renderOwnMs = Math.max(0, renderMs - renderScriptMs);
        add('render', renderOwnMs);
        add('other', Math.max(0, frame.duration - scriptMs - renderOwnMs));
      }
    }).observe({type: 'long-animation-frame', buffered: true});
  } catch (e) {}
  bb.dump = () => ({console: [...bb.console], consoleTimes: [...bb.consoleTimes], sample: bb.sample.splice(0),
                    uploads: bb.uploads, frames: bb.frames, frameWork: bb.frameWork,
                    longTaskMs: bb.longTaskMs, longTasks: bb.longTasks, busy: bb.busy,
                    hardwareConcurrency: navigator.hardwareConcurrency});
})();
""".replace("__BUSY_BUCKET_MS__", str(BUSY_BUCKET_S * 1000)).replace("__FRAME_KEYS__", str(FRAME_KEYS)).replace(
    "__FRAME_BUCKET_MS__", str(FRAME_BUCKET_S * 1000))

DROP = r"""
async ([selector, inputId]) => {
  const files = document.getElementById(inputId).files, transfer = new DataTransfer();
  for (const file of files) transfer.items.add(file);
  const target = document.querySelector(selector), box = target.getBoundingClientRect();
  const at = {bubbles: true, cancelable: true, dataTransfer: transfer,
              clientX: box.left + box.width / 2, clientY: box.top + box.height / 2};
  for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, at));
  return files.length;
}
"""
"""Drop the files of a hidden ``<input type=file>`` on an element, as a user's drag and drop does."""

FILE_INPUT = r"""
(inputId) => { const input = document.createElement('input'); input.type = 'file'; input.multiple = true;
               input.id = inputId; input.style.display = 'none'; document.body.appendChild(input); }
"""
