// Drives the seed library (npm "masterless") for the benchmark suite.
//   node seed.js sink             -> prints {"info": uri}; counts "m" packets, answers "end"/"ping"
//   node seed.js oneway URI N     -> prints {"rate": msgs/s}
//   node seed.js pingpong URI N   -> prints {"rate": round trips/s}
'use strict';
// masterless 0.4.1 starts each peer's lastSend as [] and its 1 s heartbeat timer calls
// process.hrtime(lastSend); Node >= 10 throws ERR_OUT_OF_RANGE on an empty tuple. A node that
// has sent nothing to a peer for a second (the sink during a one-way run) therefore crashed,
// and the driver waited for a "got" that never came. Treat the empty tuple as "never sent",
// as the Node versions of the library's time did: the heartbeat goes out.
var hrtime = process.hrtime;
process.hrtime = function(time) {
  return time && time.length === 0 ? hrtime() : hrtime(time);
};
process.hrtime.bigint = hrtime.bigint;
var Server = require('masterless');

var mode = process.argv[2];
var server = new Server(mode === 'sink' ? 'seed-sink' : 'seed-driver', {host: '127.0.0.1'});

if (mode === 'sink') {
  var count = 0;
  server.on('listening', function(info) {
    process.stdout.write(JSON.stringify({info: info}) + '\n');
  });
  server.on('message', function(sender, packet) {
    if (packet.t === 'm') {
      count++;
    } else if (packet.t === 'ping') {
      this.send(sender, {t: 'pong', seq: packet.seq});
    } else if (packet.t === 'end') {
      this.send(sender, {t: 'got', n: count});
      count = 0;
    }
  });
  // Exit when the driver closes our stdin (or after two minutes at most).
  process.stdin.on('end', function() { process.exit(0); });
  process.stdin.resume();
  setTimeout(function() { process.exit(0); }, 120000).unref();
} else {
  var uri = process.argv[3];
  var n = parseInt(process.argv[4], 10);
  // The seed only sends objects; this one is about as big as the Python 40 B packet.
  var packet = {t: 'm', p: [1, 'abcdefghij', 3.14159, '0123456789abcdef']};
  var start;
  var sent = 0;
  var peer;
  setTimeout(function() { process.stderr.write('seed driver timed out\n'); process.exit(2); }, 120000);

  function finish() {
    var seconds = Number(process.hrtime.bigint() - start) / 1e9;
    process.stdout.write(JSON.stringify({rate: n / seconds}) + '\n');
    process.exit(0);
  }

  function pump() {
    // Batches of 1000 per event-loop turn, as the Python drivers do.
    for (var i = 0; i < 1000 && sent < n; i++, sent++) server.send(peer, packet);
    if (sent < n) setImmediate(pump);
    else server.send(peer, {t: 'end'});
  }

  server.on('message', function(sender, reply) {
    if (reply.t === 'got') finish();
    else if (reply.t === 'pong') {
      if (reply.seq + 1 >= n) finish();
      else server.send(peer, {t: 'ping', seq: reply.seq + 1});
    }
  });
  server.on('connect', function(id) {
    peer = id;
    start = process.hrtime.bigint();
    if (mode === 'oneway') pump();
    else server.send(peer, {t: 'ping', seq: 0});
  });
  // 0.4.1's connect() does not mark the peer kept (its README says it does); without a keep
  // on either side the seed drops the connection right after the handshake.
  server.keep('seed-sink', true);
  server.on('listening', function() { server.connect(uri); });
}
