// The live view: frames from the /live WebSocket drawn on the canvas, with the run's figures.
//
// Each binary message is one frame: a 4-byte big-endian header length, the header as JSON, then
// the JPEG. The page acknowledges every frame it has drawn (or dropped for a newer one); the
// server sends a viewer a new frame only while it has fewer than two unacknowledged, so a slow
// page skips frames instead of queueing them.
//
// Glass to glass: the header carries the capture time on the server's monotonic clock. The page
// relates that clock to its own (performance.now()) by ping/pong over the same socket, keeping
// the answer with the shortest round trip: page = server + offset, to within half that round
// trip (a fraction of a millisecond on one machine). A frame's delay is measured when it is
// drawn, in the animation-frame callback just before the browser paints it.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("video");
  const ctx = canvas.getContext("2d");
  const view = {shown: 0, received: 0, skipped: 0, g2g: [], ended: false, offsetMs: null, rttMs: null, last: null};
  window.polypView = view;
  let socket = null;
  let pending = null;
  let lastSeq = 0;
  let clock = null;  // {rtt, offset, at}
  const drawnAt = [];

  const send = (message) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); };
  const ack = () => send({type: "ack"});
  const ping = () => send({type: "ping", client: performance.now()});

  function status(text, kind) {
    const badge = $("status");
    badge.textContent = text;
    badge.className = "badge" + (kind ? " " + kind : "");
  }

  function median(values) {
    if (!values.length) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
  view.g2gMedian = (n = 100) => median(view.g2g.slice(-n));

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/live`);
    socket.binaryType = "arraybuffer";
    lastSeq = 0;
    socket.onopen = () => { status("live", "live"); for (let i = 0; i < 5; i++) ping(); };
    socket.onmessage = (event) => (typeof event.data === "string" ? onText(JSON.parse(event.data)) : onFrame(event.data));
    socket.onclose = () => {
      if (view.ended) return;
      status("reconnecting", "bad");
      setTimeout(connect, 1000);
    };
  }

  function onText(message) {
    if (message.type === "pong") {
      const now = performance.now();
      const rtt = now - message.client;
      // the shortest round trip gives the closest relation; one older than 30 s is replaced anyway
      if (clock === null || rtt <= clock.rtt || now - clock.at > 30000) {
        clock = {rtt, offset: (message.client + now) / 2 - message.server, at: now};
      }
      view.offsetMs = clock.offset;
      view.rttMs = clock.rtt;
    } else if (message.type === "end") {
      view.ended = true;
      status("run ended");
    }
  }

  async function onFrame(data) {
    const length = new DataView(data).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, length)));
    view.received += 1;
    if (lastSeq && header.seq > lastSeq + 1) view.skipped += header.seq - lastSeq - 1;
    lastSeq = header.seq;
    let bitmap;
    try {
      bitmap = await createImageBitmap(new Blob([new Uint8Array(data, 4 + length)], {type: "image/jpeg"}));
    } catch (error) {
      ack();
      return;
    }
    if (pending) {  // a newer frame is ready before the last was drawn: the older one goes
      pending.bitmap.close();
      view.skipped += 1;
      ack();
    } else {
      requestAnimationFrame(draw);
    }
    pending = {bitmap, header};
  }

  function draw() {
    if (!pending) return;
    const {bitmap, header} = pending;
    pending = null;
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const now = performance.now();
    view.shown += 1;
    view.last = header;
    if (clock !== null) {
      view.g2g.push(now - (header.t_capture_ms + clock.offset));
      if (view.g2g.length > 1000) view.g2g.shift();
    }
    drawnAt.push(now);
    if (drawnAt.length > 30) drawnAt.shift();
    ack();
    show(header);
  }

  function show(header) {
    $("shown").textContent = String(view.shown);
    $("fps").textContent = header.fps.toFixed(1);
    const span = (drawnAt[drawnAt.length - 1] - drawnAt[0]) / 1000;
    $("page-fps").textContent = span > 0 ? ((drawnAt.length - 1) / span).toFixed(1) : "–";
    $("e2e").textContent = header.e2e_ms.toFixed(1) + " ms";
    const g2g = view.g2gMedian();
    $("g2g").textContent = Number.isFinite(g2g) ? g2g.toFixed(1) + " ms" : "–";
    $("skipped").textContent = String(view.skipped);
    $("viewers").textContent = String(header.viewers);
    const polyp = $("polyp");
    polyp.textContent = header.polyp ? "POLYP" : "no polyp";
    polyp.className = "indicator" + (header.polyp ? " on" : "");
  }

  setInterval(ping, 5000);  // keeps the clock relation fresh
  connect();
})();
