"""How fast this machine's cores run the page's kinds of work today, measured in the drop's own browser just
before the drop.

Why: the same 200-image drop of the same page on the same machine lost nothing one day and 0.5-0.7 of its
images on two others (``examples/validation/browser-day3``), with nothing stolen by the hypervisor
(``realclient.host``). Three 50-image drops measure a day's page only to +-15 %. A fixed piece of work timed
in a blank page of the same Chromium, before the app's page opens, says whether the cores themselves were
slower that day, to a few per cent, at the cost of about two seconds.

Three kinds of work, each the fastest of ``ROUNDS`` rounds after one to warm up (the fastest, as ``timeit``
reports: what the cores can do, less the collector's and the scheduler's pauses, which vary round to round):
- ``js_ms``: plain JavaScript on the main thread (V8): the page's own scripts.
- ``raster_ms``: drawing and reading back a 2D canvas: the page's previews.
- ``gl_ms``: a texture upload and read back through WebGL, which is SwiftShader on the CPU here: the
  page's renderer.

Several browsers at once each probe as they start, at the same moment, so their figures share the cores:
compare the probes of one-browser runs.
"""

from __future__ import annotations

from typing import Any

ROUNDS = 7
"""Timed rounds per kind of work (after one warm-up round); the probe reports their fastest."""

PROBE = r"""
async (rounds) => {
  const time = (work) => { const t0 = performance.now(); work(); return performance.now() - t0; };
  const js = () => {
    const a = new Float64Array(400000);
    let x = 12345;
    for (let i = 0; i < a.length; i++) { x = (x * 1103515245 + 12345) % 2147483648; a[i] = x / 2147483648; }
    a.sort();
    let s = 0;
    for (let r = 0; r < 20; r++) for (let i = 0; i < a.length; i++) s += Math.sqrt(a[i] * r + 1);
    return s;
  };
  const canvas = document.createElement('canvas'); canvas.width = 1024; canvas.height = 1024;
  const c2d = canvas.getContext('2d', {willReadFrequently: true});
  const raster = () => {
    for (let i = 0; i < 8; i++) {
      const g = c2d.createLinearGradient(0, 0, 1024, 1024 - i);
      g.addColorStop(0, '#' + (i * 1193046 % 16777216).toString(16).padStart(6, '0')); g.addColorStop(1, '#fff');
      c2d.fillStyle = g; c2d.fillRect(0, 0, 1024, 1024);
      c2d.drawImage(canvas, 0, 0, 1024, 1024, 13, 7, 700, 700);
    }
    return c2d.getImageData(0, 0, 1024, 1024).data[4];
  };
  const glCanvas = document.createElement('canvas'); glCanvas.width = 256; glCanvas.height = 256;
  const gl = glCanvas.getContext('webgl');
  const pixels = new Uint8Array(2048 * 2048 * 4);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  const texture = gl && gl.createTexture(), fb = gl && gl.createFramebuffer(), out = new Uint8Array(2048 * 2048 * 4);
  const upload = () => {
    for (let i = 0; i < 2; i++) {
      gl.bindTexture(gl.TEXTURE_2D, texture);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 2048, 2048, 0, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
      gl.readPixels(0, 0, 2048, 2048, gl.RGBA, gl.UNSIGNED_BYTE, out);
    }
    return out[7];
  };
  const result = {};
  for (const [name, work] of [['js_ms', js], ['raster_ms', raster], ['gl_ms', gl ? upload : null]]) {
    if (!work) { result[name] = null; continue; }
    work();
    const times = [];
    for (let r = 0; r < rounds; r++) { times.push(time(work)); await new Promise(r => setTimeout(r, 0)); }
    result[name] = Math.round(Math.min(...times) * 10) / 10;
  }
  return result;
}
"""


def probe_cores(browser: Any) -> dict[str, float | None]:
    """The probe's times in milliseconds, in a blank page of ``browser`` (a Playwright browser) that is
    closed again before the app's page opens."""
    context = browser.new_context()
    try:
        page = context.new_page()
        return page.evaluate(PROBE, ROUNDS)
    finally:
        context.close()
