"""The third engine: a real web app's own client in headless Chromium (``bulkbench browser-run``).

Where the client's behaviour is the question (its queues, its retries, its page's CPU), the real
client is the judge: Playwright drives Debian's Chromium, a workload's files are dropped on the app as
a user drops them, the browser's own instrumentation records every WebSocket frame and HTTP request,
and each image is judged by the target's truth, into the same result schema (``engine: "browser"``).

- ``pagejs``   what runs inside the page before the app: console counted (not streamed), uploads and
               long tasks recorded;
- ``session``  one browser's drop (a child process, inside the run's network namespace when shaped);
- ``run``      ``bulkbench browser-run``: images, network, the app and its page, sessions, results.
"""
