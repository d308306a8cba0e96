// Preload (node -r) for the real ImageCanvas: its server calls listen(port) with no host, which binds
// every interface; this binds BULKBENCH_LISTEN_HOST (default 127.0.0.1) instead. Its code is untouched.
const net = require('net');
const host = process.env.BULKBENCH_LISTEN_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  const numeric = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (numeric && (rest.length === 0 || typeof rest[0] === 'function')) {
    return listen.call(this, Number(port), host, ...rest);
  }
  return listen.call(this, port, ...rest);
};
