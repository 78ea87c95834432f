// Live poke: press, drag and release on a photo and watch it sway and settle, simulated and warped in the browser.
//
// The server sends the photo's modal basis once (gid_pipeline/live_poke.py documents the payload); from then on
// every frame is made here. The simulation is gid_pipeline/dynamics.py's, with the same parameters: each mode k is
// a damped oscillator q'' + 2 xi w q' + w^2 q = u (complex q, w = omega_k sqrt(stiffness / mass)), driven by a
// force that is constant between pointer events. Each step is the oscillator's exact solution over the step
// (dynamics.py's closed-form responses, composed step by step), so any frame rate gives the same motion.
// A drag from the pressed point p0 to p pushes with d = strength * (p - p0), soft-limited like the Python poke;
// release sets the force to zero and the scene swings back.
//
// Warping: the displacement D(p) = Re(sum_k Phi_k(p) q_k), soft-limited, moves the photo forward; each output
// pixel samples the photo at p - u(p), u(p) = D(p - D(p)) one fixed-point step towards the inverse of the forward
// warp (exact where D is locally constant, and exactly the photo where nothing moves). Both D and u are smooth, so
// they are computed on the basis's coarse grid and u is upsampled bilinearly per canvas pixel: WebGL2 does it in
// three passes (D, u, the warp); without WebGL2 a Canvas 2D path does the same arithmetic on the CPU.
//
// app.py hands this file to gr.HTML as its js_on_load, followed by a call to mountLivePokeInGradio; a test page
// loads it as a plain script and calls mountLivePoke itself.

const LIVE_FORMAT = "gid-live-basis";
const LIVE_VERSION = 1;
const LIVE_BUDGET_BYTES = 4_000_000; // live_poke.MAX_PAYLOAD_BYTES
const STILL_PIXELS = 1e-3; // dynamics.STILL_PIXELS: below this the scene is at rest and drawing stops
const MAX_SHADER_MODES = 32; // uniform vec2 q[MODES] stays far below WebGL2's 224 fragment uniform vectors

const LIVE_TEMPLATE = `
<div class="gid-live">
  <div class="gid-live-stage">
    <canvas id="live-poke-canvas" width="2" height="2" hidden></canvas>
    <p class="gid-live-message" role="status">Upload a photo (or pick an example) to poke it live.</p>
  </div>
  <div class="gid-live-controls" hidden>
    <label>Stiffness <input type="range" name="stiffness" step="0.05"><output></output></label>
    <label>Damping <input type="range" name="damping" step="0.01"><output></output></label>
    <label>Strength <input type="range" name="strength" step="0.05"><output></output></label>
    <button type="button" name="reset">Reset</button>
    <button type="button" name="record">Record</button>
    <span class="gid-live-info"></span>
  </div>
</div>`;

const LIVE_CSS = `
.gid-live { max-width: 768px; }
.gid-live [hidden] { display: none !important; }
.gid-live canvas { display: block; width: 100%; height: auto; touch-action: none; cursor: grab; border-radius: 4px; }
.gid-live canvas:active { cursor: grabbing; }
.gid-live-message { margin: 0.5em 0; }
.gid-live-controls { display: flex; flex-wrap: wrap; gap: 0.4em 1em; align-items: center; margin-top: 0.5em; }
.gid-live-controls label { display: flex; gap: 0.4em; align-items: center; }
.gid-live-controls output { min-width: 2.5em; font-variant-numeric: tabular-nums; }
.gid-live-controls button { padding: 0.2em 0.8em; border: 1px solid #8886; border-radius: 4px; }
.gid-live-info { opacity: 0.7; font-size: 0.9em; }`;

// ------------------------------------------------------------------------------------------------ the basis

/** Bytes of a base64 string. */
function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Parse a payload string (live_poke.live_payload). Returns {message} for a message payload or a payload this
 * page refuses (over the budget, unknown format), else the basis:
 * {width, height, gridWidth, gridHeight, modes, omegas, referenceCompliance, params, controls, imageUrl,
 *  shapes: Float32Array (modes, gridHeight, gridWidth, 4) in photo pixels, reach: Float64Array (modes) the
 *  largest |Phi_k| over the grid (px), bytes (of the payload), complianceKept, recordSeconds}.
 */
function parseLiveBasis(text) {
  if (text.length > LIVE_BUDGET_BYTES) {
    const mb = (n) => (n / 1e6).toFixed(1);
    return { message: `The motion basis is ${mb(text.length)} MB, over the ${mb(LIVE_BUDGET_BYTES)} MB live budget: ` +
                      "it was not loaded. Use the Poke button instead." };
  }
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    return { message: "The motion basis could not be read (not JSON)." };
  }
  if (payload.format !== LIVE_FORMAT) return { message: "The motion basis is in an unknown format." };
  if (payload.message) return { message: payload.message };
  if (payload.version !== LIVE_VERSION) return { message: `Motion basis version ${payload.version} is not supported.` };
  const modes = payload.modes, gw = payload.grid.width, gh = payload.grid.height;
  if (modes > MAX_SHADER_MODES) return { message: `The motion basis has ${modes} modes; at most ${MAX_SHADER_MODES} play live.` };
  const bytes = decodeBase64(payload.data);
  const codes = payload.bits === 8 ? new Int8Array(bytes.buffer) : new Int16Array(bytes.buffer); // little-endian
  if (codes.length !== modes * gh * gw * 4) return { message: "The motion basis is truncated." };
  const levels = 2 ** (payload.bits - 1) - 1;
  const shapes = new Float32Array(codes.length);
  const reach = new Float64Array(modes);
  const plane = gh * gw * 4;
  for (let k = 0; k < modes; k++) {
    const scale = payload.scales[k];
    let largest = 0;
    for (let i = k * plane; i < (k + 1) * plane; i += 4) {
      for (let c = 0; c < 4; c++) {
        const unit = codes[i + c] / levels; // square-root companding: value = scale * sign(u) * u^2
        shapes[i + c] = Math.sign(unit) * unit * unit * scale[c];
      }
      largest = Math.max(largest, Math.hypot(shapes[i], shapes[i + 1], shapes[i + 2], shapes[i + 3]));
    }
    reach[k] = largest;
  }
  return {
    width: payload.image.width, height: payload.image.height, gridWidth: gw, gridHeight: gh, modes,
    omegas: Float64Array.from(payload.omegas), referenceCompliance: payload.reference_compliance,
    params: payload.params, controls: payload.controls, imageUrl: payload.image.url, shapes, reach,
    bytes: text.length, complianceKept: payload.compliance_kept, recordSeconds: payload.record_seconds,
  };
}

/**
 * The (modes * 4) mode shapes at photo point (x, y), as dynamics.ModalBasis.sample reads them from the basis
 * upsampled to the photo (live_poke.LiveBasis.to_modal_basis): bilinear between the photo's pixels, each of which
 * is the grid upsampled with pixel centres aligned (torch's bilinear, align_corners=False; WebGL's LINEAR).
 */
function shapesAt(basis, x, y) {
  const { width: W, height: H } = basis;
  x = Math.min(Math.max(x, 0), W - 1);
  y = Math.min(Math.max(y, 0), H - 1);
  const x0 = Math.min(Math.floor(x), Math.max(W - 2, 0)), y0 = Math.min(Math.floor(y), Math.max(H - 2, 0));
  const x1 = Math.min(x0 + 1, W - 1), y1 = Math.min(y0 + 1, H - 1);
  const fx = x - x0, fy = y - y0;
  const out = new Float64Array(basis.modes * 4);
  const corners = [[x0, y0, (1 - fx) * (1 - fy)], [x1, y0, fx * (1 - fy)], [x0, y1, (1 - fx) * fy], [x1, y1, fx * fy]];
  for (const [px, py, weight] of corners) {
    if (weight !== 0) accumulateGridSample(basis, px, py, weight, out);
  }
  return out;
}

/** out += weight * (the grid upsampled to the photo, at integer photo pixel (px, py)), all modes and channels. */
function accumulateGridSample(basis, px, py, weight, out) {
  const { gridWidth: gw, gridHeight: gh } = basis;
  const sx = Math.max((px + 0.5) * gw / basis.width - 0.5, 0), sy = Math.max((py + 0.5) * gh / basis.height - 0.5, 0);
  const i0 = Math.floor(sx), j0 = Math.floor(sy);
  const i1 = Math.min(i0 + 1, gw - 1), j1 = Math.min(j0 + 1, gh - 1);
  const lx = sx - i0, ly = sy - j0;
  const taps = [[i0, j0, (1 - lx) * (1 - ly)], [i1, j0, lx * (1 - ly)], [i0, j1, (1 - lx) * ly], [i1, j1, lx * ly]];
  const plane = gh * gw * 4;
  for (let k = 0; k < basis.modes; k++) {
    for (const [i, j, w] of taps) {
      const at = k * plane + (j * gw + i) * 4;
      for (let c = 0; c < 4; c++) out[k * 4 + c] += weight * w * basis.shapes[at + c];
    }
  }
}

/** dynamics.soft_limit: identity up to limit / 2, then a tanh knee that never reaches limit. */
function softLimit(magnitude, limit) {
  const knee = 0.5 * limit;
  return magnitude <= knee ? magnitude : knee + knee * Math.tanh((magnitude - knee) / knee);
}

// ------------------------------------------------------------------------------------------------ simulation

/** The photo's modes as damped oscillators under piecewise-constant forces (dynamics.py, stepped exactly). */
class ModalSimulator {
  constructor(basis) {
    this.basis = basis;
    this.modes = basis.modes;
    this.limit = basis.params.max_displacement * Math.min(basis.width, basis.height); // DynamicsParams.limit_pixels
    this.q = new Float64Array(2 * this.modes); // (re, im) per mode, dimensionless
    this.v = new Float64Array(2 * this.modes); // dq/dt, 1/s
    this.u = new Float64Array(2 * this.modes); // force per unit modal mass, 1/s^2
    this.time = 0;
    this.setParams(basis.params);
  }

  /** Damping ratio, stiffness and mass (DynamicsParams); the state carries on. */
  setParams({ damping = this.damping, stiffness = this.stiffness, mass = this.mass }) {
    Object.assign(this, { damping, stiffness, mass });
    this.omega = this.basis.omegas.map((w) => w * Math.sqrt(stiffness / mass));
  }

  reset(time = this.time) {
    this.q.fill(0); this.v.fill(0); this.u.fill(0);
    this.time = time;
  }

  /**
   * The push of force (dx, dy) photo pixels at photo point (x, y), per unit modal mass (dynamics.modal_inputs):
   * for a drag the modal force g Phi^H d / mass (1/s^2), for an impulse the velocity kick g Phi^H d /
   * (omega_ref mass) (1/s). Returns Float64Array (2 modes): (re, im) per mode.
   */
  modalInput(x, y, dx, dy, impulse = false) {
    const out = new Float64Array(2 * this.modes);
    const scale = Math.max(Math.abs(dx), Math.abs(dy));
    if (scale === 0) return out;
    const ux = dx / scale, uy = dy / scale, length = Math.hypot(ux, uy);
    const magnitude = softLimit(scale * length, this.limit);
    const fx = (ux / length) * magnitude, fy = (uy / length) * magnitude;
    const phi = shapesAt(this.basis, x, y);
    let total = 0, perOmega = 0;
    for (let k = 0; k < this.modes; k++) {
      const w = this.basis.omegas[k];
      const c = (phi[4 * k] ** 2 + phi[4 * k + 1] ** 2 + phi[4 * k + 2] ** 2 + phi[4 * k + 3] ** 2) / (w * w);
      total += c;
      perOmega += c / w;
    }
    if (total === 0) return out; // nothing moves here, so no mode can be driven from this point
    let gain = 1 / (Math.max(total, this.basis.referenceCompliance) * this.mass);
    if (impulse) gain *= perOmega / total; // divide by omega_ref(p)
    for (let k = 0; k < this.modes; k++) { // Phi^H d = (Re Phi . d) - i (Im Phi . d)
      out[2 * k] = gain * (phi[4 * k] * fx + phi[4 * k + 1] * fy);
      out[2 * k + 1] = -gain * (phi[4 * k + 2] * fx + phi[4 * k + 3] * fy);
    }
    return out;
  }

  setForce(input) { this.u.set(input); }
  clearForce() { this.u.fill(0); }
  kick(input) { for (let i = 0; i < input.length; i++) this.v[i] += input[i]; }

  /** Advance the state by dt seconds under the current force: the exact solution, for any dt >= 0. */
  step(dt) {
    if (!(dt > 0)) return;
    const xi = this.damping, root = Math.sqrt(1 - xi * xi);
    for (let k = 0; k < this.modes; k++) {
      const w = this.omega[k], wd = w * root;
      const decay = Math.exp(-xi * w * dt), cos = Math.cos(wd * dt), sin = Math.sin(wd * dt);
      for (let part = 2 * k; part < 2 * k + 2; part++) { // the real and imaginary parts obey the same real ODE
        const rest = this.u[part] / (w * w); // equilibrium under the force
        const e = this.q[part] - rest, v = this.v[part];
        this.q[part] = rest + decay * (e * cos + ((v + xi * w * e) / wd) * sin);
        this.v[part] = decay * (v * cos - ((w * w * e + xi * w * v) / wd) * sin);
      }
    }
    this.time += dt;
  }

  /** Step to an absolute time in seconds (no-op for a time already passed). */
  advanceTo(time) { this.step(time - this.time); }

  /** An upper bound on any pixel's displacement now and, with no force, later (px): sum |Phi_k| (|q_k| + |v_k| / w_k). */
  motionBound() {
    let bound = 0;
    for (let k = 0; k < this.modes; k++) {
      const q = Math.hypot(this.q[2 * k], this.q[2 * k + 1]), v = Math.hypot(this.v[2 * k], this.v[2 * k + 1]);
      bound += this.basis.reach[k] * (q + v / this.omega[k]);
    }
    return bound;
  }

  forced() { return this.u.some((value) => value !== 0); }
  atRest() { return !this.forced() && this.motionBound() < STILL_PIXELS; }

  /** Displacement (dx, dy) px at photo point (x, y) now, soft-limited as every pixel is (dynamics.modal_displacements). */
  displacementAt(x, y) {
    const phi = shapesAt(this.basis, x, y);
    let dx = 0, dy = 0;
    for (let k = 0; k < this.modes; k++) {
      dx += phi[4 * k] * this.q[2 * k] - phi[4 * k + 2] * this.q[2 * k + 1];
      dy += phi[4 * k + 1] * this.q[2 * k] - phi[4 * k + 3] * this.q[2 * k + 1];
    }
    const magnitude = Math.hypot(dx, dy);
    if (magnitude <= 0.5 * this.limit) return [dx, dy];
    const factor = softLimit(magnitude, this.limit) / magnitude;
    return [dx * factor, dy * factor];
  }
}

// ------------------------------------------------------------------------------------------------ renderers

const VERTEX_SHADER = `#version 300 es
in vec2 corner;
void main() { gl_Position = vec4(corner, 0.0, 1.0); }`;

// Pass 1, on the grid: the displacement field D = Re(sum_k Phi_k q_k) before the soft limit. Bilinear upsampling
// is linear, so summing the modes on the grid and upsampling D gives what upsampling every mode would, for a
// fraction of the texture reads.
function fieldShader(modes) {
  return `#version 300 es
precision highp float;
precision highp sampler2DArray;
const int MODES = ${modes};
uniform sampler2DArray shapes; // one RGBA16F layer per mode: (x.real, y.real, x.imag, y.imag), photo px
uniform vec2 q[MODES];         // modal coordinates (re, im)
out vec4 field;
void main() {
  ivec2 cell = ivec2(gl_FragCoord.xy);
  vec2 d = vec2(0.0);
  for (int k = 0; k < MODES; ++k) {
    vec4 phi = texelFetch(shapes, ivec3(cell, k), 0);
    d += phi.xy * q[k].x - phi.zw * q[k].y;
  }
  field = vec4(d, 0.0, 1.0);
}`;
}

// Pass 2, on the grid: where each grid point's pixel comes from, u = D(p - D(p)), D soft-limited as
// dynamics.modal_displacements limits it (identity below limit / 2, where nearly all motion is).
const INVERSE_SHADER = `#version 300 es
precision highp float;
uniform sampler2D field; // pass 1's D, read at grid points and between them (LINEAR)
uniform vec2 size;       // photo (width, height), px
uniform float limit;     // displacement limit, px
out vec4 inverse;
vec2 limited(vec2 d) {
  float magnitude = length(d), knee = 0.5 * limit;
  return magnitude > knee ? d * ((knee + knee * tanh((magnitude - knee) / knee)) / magnitude) : d;
}
void main() {
  ivec2 cell = ivec2(gl_FragCoord.xy);
  vec2 d = limited(texelFetch(field, cell, 0).xy);
  if (d == vec2(0.0)) { inverse = vec4(0.0); return; } // still stays exactly still
  vec2 p = gl_FragCoord.xy * size / vec2(textureSize(field, 0)); // the grid point, photo px from the top-left
  inverse = vec4(limited(texture(field, (p - d) / size).xy), 0.0, 1.0);
}`;

// Pass 3, on the canvas: the photo sampled at p - u(p), u upsampled by LINEAR filtering (pixel centres aligned).
const WARP_SHADER = `#version 300 es
precision highp float;
uniform sampler2D photo;
uniform sampler2D inverse; // pass 2's u
uniform vec2 size;         // photo (width, height), px
out vec4 color;
void main() {
  vec2 p = vec2(gl_FragCoord.x, size.y - gl_FragCoord.y); // px from the top-left; pixel centres at +0.5
  vec2 u = texture(inverse, p / size).xy;
  if (u == vec2(0.0)) { color = texelFetch(photo, ivec2(p), 0); return; } // still: the photo's own pixel
  color = texture(photo, (p - u) / size);
}`;

/**
 * Draws frames with WebGL2 in three passes: fieldShader and INVERSE_SHADER on the grid into half-float textures,
 * then WARP_SHADER on the canvas. Needs EXT_color_buffer_float to render into half floats; without it, null (the
 * Canvas 2D path takes over).
 */
class WebGLRenderer {
  static create(canvas, basis, photo) {
    const gl = canvas.getContext("webgl2", { antialias: false, depth: false, alpha: false });
    if (!gl || !gl.getExtension("EXT_color_buffer_float")) return null;
    return new WebGLRenderer(gl, basis, photo);
  }

  constructor(gl, basis, photo) {
    this.gl = gl;
    this.name = "WebGL2";
    this.basis = basis;
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    this.fieldProgram = this.program(fieldShader(basis.modes));
    this.inverseProgram = this.program(INVERSE_SHADER);
    this.warpProgram = this.program(WARP_SHADER);

    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false); // row 0 of every texture is the photo's top row
    this.texture(gl.TEXTURE0, gl.TEXTURE_2D, gl.LINEAR);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, photo);
    this.texture(gl.TEXTURE1, gl.TEXTURE_2D_ARRAY, gl.NEAREST);
    gl.texImage3D(gl.TEXTURE_2D_ARRAY, 0, gl.RGBA16F, basis.gridWidth, basis.gridHeight, basis.modes, 0,
                  gl.RGBA, gl.FLOAT, basis.shapes);
    this.fieldTarget = this.gridTarget(gl.TEXTURE2);
    this.inverseTarget = this.gridTarget(gl.TEXTURE3);

    const at = (program, name) => gl.getUniformLocation(program, name);
    gl.useProgram(this.fieldProgram);
    gl.uniform1i(at(this.fieldProgram, "shapes"), 1);
    this.qLocation = at(this.fieldProgram, "q");
    gl.useProgram(this.inverseProgram);
    gl.uniform1i(at(this.inverseProgram, "field"), 2);
    gl.uniform2f(at(this.inverseProgram, "size"), basis.width, basis.height);
    this.limitLocation = at(this.inverseProgram, "limit");
    gl.useProgram(this.warpProgram);
    gl.uniform1i(at(this.warpProgram, "photo"), 0);
    gl.uniform1i(at(this.warpProgram, "inverse"), 3);
    gl.uniform2f(at(this.warpProgram, "size"), basis.width, basis.height);
    this.q = new Float32Array(2 * basis.modes);
    this.probe = new Uint8Array(4);
  }

  /** A linked program of VERTEX_SHADER and a fragment shader, its corner attribute bound to the quad. */
  program(fragmentSource) {
    const gl = this.gl, program = gl.createProgram();
    for (const [type, source] of [[gl.VERTEX_SHADER, VERTEX_SHADER], [gl.FRAGMENT_SHADER, fragmentSource]]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    const corner = gl.getAttribLocation(program, "corner");
    gl.enableVertexAttribArray(corner);
    gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
    return program;
  }

  /** A framebuffer drawing into a new RG16F grid-sized texture on a texture unit (LINEAR, for reading back). */
  gridTarget(unit) {
    const gl = this.gl, { gridWidth, gridHeight } = this.basis;
    const texture = this.texture(unit, gl.TEXTURE_2D, gl.LINEAR);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RG16F, gridWidth, gridHeight);
    const framebuffer = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) throw new Error("no half-float target");
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    return framebuffer;
  }

  /** A new texture bound to a unit, filtered by filter, clamped at the edges. */
  texture(unit, target, filter) {
    const gl = this.gl, texture = gl.createTexture();
    gl.activeTexture(unit);
    gl.bindTexture(target, texture);
    gl.texParameteri(target, gl.TEXTURE_MIN_FILTER, filter);
    gl.texParameteri(target, gl.TEXTURE_MAG_FILTER, filter);
    gl.texParameteri(target, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(target, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    return texture;
  }

  /** Draw the photo moved by modal coordinates q (Float64Array, (re, im) per mode) with displacement limit px. */
  draw(q, limit) {
    const gl = this.gl, { gridWidth, gridHeight, width, height } = this.basis;
    this.q.set(q);
    gl.useProgram(this.fieldProgram);
    gl.uniform2fv(this.qLocation, this.q);
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.fieldTarget);
    gl.viewport(0, 0, gridWidth, gridHeight);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    gl.useProgram(this.inverseProgram);
    gl.uniform1f(this.limitLocation, limit);
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.inverseTarget);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    gl.useProgram(this.warpProgram);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.viewport(0, 0, width, height);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }

  /** The canvas's RGBA pixels, (height, width, 4) top row first, as drawn last (call right after draw). */
  pixels() {
    const gl = this.gl, { width, height } = this.basis;
    const bottomUp = new Uint8Array(width * height * 4), rows = new Uint8Array(width * height * 4);
    gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, bottomUp);
    for (let y = 0; y < height; y++) rows.set(bottomUp.subarray((height - 1 - y) * width * 4, (height - y) * width * 4), y * width * 4);
    return rows;
  }

  /** Block until the GPU has drawn what was asked (for measurements only): reading a pixel back waits for it,
   * where Chromium's gl.finish() may return before the GPU process has run the commands. */
  finish() { this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, this.probe); }

  release() { this.gl.getExtension("WEBGL_lose_context")?.loseContext(); }
}

/** The same warp on the CPU into a Canvas 2D: D and u on the grid, then per pixel bilinear u and photo samples. */
class CanvasRenderer {
  static create(canvas, basis, photo) {
    const context = canvas.getContext("2d");
    return context ? new CanvasRenderer(context, basis, photo) : null;
  }

  constructor(context, basis, photo) {
    this.context = context;
    this.name = "Canvas 2D";
    this.basis = basis;
    const { width: W, height: H, gridWidth: gw, gridHeight: gh } = basis;
    context.drawImage(photo, 0, 0, W, H);
    this.source = context.getImageData(0, 0, W, H).data;
    this.output = context.createImageData(W, H);
    this.field = new Float32Array(gw * gh * 2); // D on the grid, before the soft limit
    this.inverse = new Float32Array(gw * gh * 2); // u on the grid
    // Grid taps of every photo column and row (pixel centres aligned, clamped at the edges), shared by all frames.
    const taps = (n, g) => {
      const low = new Int32Array(n), high = new Int32Array(n), weight = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const s = Math.max((i + 0.5) * g / n - 0.5, 0);
        low[i] = Math.floor(s); high[i] = Math.min(low[i] + 1, g - 1); weight[i] = s - low[i];
      }
      return { low, high, weight };
    };
    this.columns = taps(W, gw);
    this.rows = taps(H, gh);
  }

  /** Soft-limited (dx, dy) into out, from a grid field bilinearly at grid coordinates (sx, sy), clamped. */
  static sample(field, gw, gh, sx, sy, limit, out) {
    sx = Math.min(Math.max(sx, 0), gw - 1);
    sy = Math.min(Math.max(sy, 0), gh - 1);
    const i0 = Math.floor(sx), j0 = Math.floor(sy), i1 = Math.min(i0 + 1, gw - 1), j1 = Math.min(j0 + 1, gh - 1);
    CanvasRenderer.blend(field, gw, i0, i1, sx - i0, j0, j1, sy - j0, out);
    const magnitude = Math.hypot(out[0], out[1]);
    if (magnitude > 0.5 * limit) {
      const factor = softLimit(magnitude, limit) / magnitude;
      out[0] *= factor; out[1] *= factor;
    }
  }

  /** Bilinear blend of a 2-channel grid field between columns i0, i1 (weight lx) and rows j0, j1 (ly), into out. */
  static blend(f, gw, i0, i1, lx, j0, j1, ly, out) {
    const a = 2 * (j0 * gw + i0), b = 2 * (j0 * gw + i1), c = 2 * (j1 * gw + i0), d = 2 * (j1 * gw + i1);
    out[0] = (1 - ly) * ((1 - lx) * f[a] + lx * f[b]) + ly * ((1 - lx) * f[c] + lx * f[d]);
    out[1] = (1 - ly) * ((1 - lx) * f[a + 1] + lx * f[b + 1]) + ly * ((1 - lx) * f[c + 1] + lx * f[d + 1]);
  }

  draw(q, limit) {
    const { width: W, height: H, gridWidth: gw, gridHeight: gh, modes, shapes } = this.basis;
    const field = this.field, inverse = this.inverse, cells = gw * gh, d = [0, 0];
    field.fill(0);
    for (let k = 0; k < modes; k++) { // pass 1: D
      const qr = q[2 * k], qi = q[2 * k + 1];
      if (qr === 0 && qi === 0) continue;
      for (let i = 0, at = k * cells * 4; i < cells; i++, at += 4) {
        field[2 * i] += shapes[at] * qr - shapes[at + 2] * qi;
        field[2 * i + 1] += shapes[at + 1] * qr - shapes[at + 3] * qi;
      }
    }
    const toGridX = gw / W, toGridY = gh / H;
    for (let j = 0; j < gh; j++) { // pass 2: u = D(p - D(p)), in grid coordinates
      for (let i = 0; i < gw; i++) {
        const at = 2 * (j * gw + i);
        CanvasRenderer.sample(field, gw, gh, i, j, limit, d);
        if (d[0] === 0 && d[1] === 0) { inverse[at] = 0; inverse[at + 1] = 0; continue; }
        CanvasRenderer.sample(field, gw, gh, i - d[0] * toGridX, j - d[1] * toGridY, limit, d);
        inverse[at] = d[0]; inverse[at + 1] = d[1];
      }
    }
    const src = this.source, dst = this.output.data;
    const { low: cx0, high: cx1, weight: cwx } = this.columns, { low: ry0, high: ry1, weight: rwy } = this.rows;
    for (let y = 0; y < H; y++) { // pass 3: the photo at p - u(p), bilinear
      for (let x = 0; x < W; x++) {
        const at = 4 * (y * W + x);
        CanvasRenderer.blend(inverse, gw, cx0[x], cx1[x], cwx[x], ry0[y], ry1[y], rwy[y], d);
        if (d[0] === 0 && d[1] === 0) { // still: the photo's own pixel
          dst[at] = src[at]; dst[at + 1] = src[at + 1]; dst[at + 2] = src[at + 2]; dst[at + 3] = 255;
          continue;
        }
        const sx = Math.min(Math.max(x - d[0], 0), W - 1), sy = Math.min(Math.max(y - d[1], 0), H - 1);
        const x0 = Math.min(Math.floor(sx), W - 2), y0 = Math.min(Math.floor(sy), H - 2);
        const fx = sx - x0, fy = sy - y0;
        const p00 = 4 * (y0 * W + x0), p10 = p00 + 4, p01 = p00 + 4 * W, p11 = p01 + 4;
        for (let c = 0; c < 3; c++) {
          dst[at + c] = (1 - fy) * ((1 - fx) * src[p00 + c] + fx * src[p10 + c]) + fy * ((1 - fx) * src[p01 + c] + fx * src[p11 + c]);
        }
        dst[at + 3] = 255;
      }
    }
    this.context.putImageData(this.output, 0, 0);
  }

  pixels() { return this.context.getImageData(0, 0, this.basis.width, this.basis.height).data; }

  finish() {} // putImageData has drawn by the time it returns

  release() {}
}

// ------------------------------------------------------------------------------------------------ the widget

/**
 * Build the live poke widget inside root and return its controller (also at canvas.livePoke, for tests).
 * options: trigger(name, data) sends an event to the server (Record), renderer: "auto" | "webgl2" | "2d".
 */
function mountLivePoke(root, { trigger = () => {}, renderer = "auto" } = {}) {
  root.innerHTML = LIVE_TEMPLATE;
  if (!document.getElementById("gid-live-style")) {
    const style = document.createElement("style");
    style.id = "gid-live-style";
    style.textContent = LIVE_CSS;
    document.head.appendChild(style);
  }
  let canvas = root.querySelector("canvas");
  const message = root.querySelector(".gid-live-message");
  const controls = root.querySelector(".gid-live-controls");
  const info = root.querySelector(".gid-live-info");
  const sliders = Object.fromEntries([...controls.querySelectorAll("input")].map((input) => [input.name, input]));

  const live = {
    basis: null, sim: null, renderer: null, strength: 1,
    grab: null,         // {x, y, pointerId, input: (dx, dy) -> modal force}: the pressed point while dragging
    pending: null,      // {time, dx, dy}: the latest pointer move, applied at the next frame at its own time
    segment: null,      // the force held since its start: {x, y, dx, dy, start}
    log: [],            // the pokes since the scene was last at rest, as dynamics.Poke fields (seconds from origin)
    origin: 0,          // simulation time at which the log begins
    running: false,
    stats: null,        // {frames: [draw times, ms], latencies: [ms]} while measuring (benchmark)
    syncLatency: false, // finish each frame on the GPU before taking its latency (benchmark)
    unshown: null,      // timeStamp (ms) of the earliest pointer event not drawn yet
    loads: 0,           // payloads asked to load so far: a slow photo decode must not overwrite a newer one
  };

  const say = (text) => {
    message.textContent = text;
    message.hidden = !text;
  };

  const now = () => performance.now() / 1000;

  const toImage = (event) => { // pointer -> photo pixels, (0, 0) the top-left pixel's centre
    const rect = canvas.getBoundingClientRect();
    const { width, height } = live.basis;
    const x = ((event.clientX - rect.left) / rect.width) * width - 0.5;
    const y = ((event.clientY - rect.top) / rect.height) * height - 0.5;
    return [Math.min(Math.max(x, -0.5), width - 0.5), Math.min(Math.max(y, -0.5), height - 0.5)];
  };

  /** Change the held force at simulation time t (s): close the held segment into the log, start the new one. */
  function holdForce(t, dx, dy) {
    const sim = live.sim;
    sim.advanceTo(t);
    t = sim.time; // an event older than the last frame acts when the simulation is (it cannot act earlier)
    const held = live.segment;
    if (held && t > held.start) logPoke(held, t - held.start);
    live.segment = null;
    if (dx === 0 && dy === 0) {
      sim.clearForce();
    } else {
      live.segment = { x: live.grab.x, y: live.grab.y, dx, dy, start: t };
      sim.setForce(live.grab.input(dx, dy));
    }
  }

  /** Log a push {x, y, dx, dy, start (simulation time)} held for hold seconds (0: an impulse), if it begins
   * within the video Record can make (payload's record_seconds): later ones could not show in it. */
  function logPoke({ x, y, dx, dy, start }, hold, log = live.log) {
    if (start - live.origin < live.basis.recordSeconds) log.push({ x, y, dx, dy, start: start - live.origin, hold });
  }

  /** A new interaction starts a new log when the scene is at rest (else it continues what is still moving). */
  function beginInteraction(t) {
    live.sim.advanceTo(t);
    if (live.sim.atRest() && !live.segment) {
      live.log = [];
      live.origin = live.sim.time;
    }
  }

  function frame() {
    const sim = live.sim;
    if (!sim) {
      live.running = false;
      return;
    }
    if (live.pending && live.grab) holdForce(live.pending.time, live.pending.dx, live.pending.dy);
    live.pending = null;
    sim.advanceTo(now());
    live.renderer.draw(sim.q, sim.limit);
    if (live.stats) {
      live.stats.frames.push(performance.now());
      if (live.unshown !== null) {
        if (live.syncLatency) live.renderer.finish();
        live.stats.latencies.push(performance.now() - live.unshown);
      }
    }
    live.unshown = null;
    if (live.grab || !sim.atRest()) {
      requestAnimationFrame(frame);
    } else {
      sim.reset(); // below STILL_PIXELS: exactly the photo from here on, as dynamics renders a settled scene
      live.renderer.draw(sim.q, sim.limit);
      live.running = false;
    }
  }

  function wake() {
    if (!live.running && live.sim) {
      live.running = true;
      requestAnimationFrame(frame);
    }
  }

  const listeners = {
    pointerdown(event) {
      if (!live.sim || live.grab || event.button > 0) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      const [x, y] = toImage(event);
      beginInteraction(event.timeStamp / 1000);
      const sim = live.sim;
      live.grab = { x, y, pointerId: event.pointerId, input: (dx, dy) => sim.modalInput(x, y, dx, dy) };
      wake();
    },
    pointermove(event) {
      if (!live.grab || event.pointerId !== live.grab.pointerId) return;
      const [x, y] = toImage(event);
      live.pending = { time: event.timeStamp / 1000, dx: live.strength * (x - live.grab.x), dy: live.strength * (y - live.grab.y) };
      live.unshown ??= event.timeStamp;
    },
    pointerup(event) {
      if (!live.grab || event.pointerId !== live.grab.pointerId) return;
      if (live.pending) holdForce(live.pending.time, live.pending.dx, live.pending.dy);
      live.pending = null;
      holdForce(event.timeStamp / 1000, 0, 0);
      live.grab = null;
      live.unshown ??= event.timeStamp;
      wake();
    },
  };
  listeners.pointercancel = listeners.pointerup;

  // A canvas per photo: a canvas keeps the first kind of context it gave out, with that photo's buffers.
  function freshCanvas(width, height) {
    const next = document.createElement("canvas");
    next.id = canvas.id;
    next.width = width;
    next.height = height;
    for (const [type, listener] of Object.entries(listeners)) next.addEventListener(type, listener);
    canvas.replaceWith(next);
    canvas = next;
    return next;
  }

  // Sliders: ranges from the payload (live_poke.CONTROL_RANGES), defaults from its DynamicsParams.
  for (const [name, input] of Object.entries(sliders)) {
    input.addEventListener("input", () => {
      const value = Number(input.value);
      input.nextElementSibling.value = value.toFixed(2);
      if (name === "strength") live.strength = value;
      else live.sim?.setParams({ [name]: value });
    });
  }
  controls.querySelector("[name=reset]").addEventListener("click", () => controller.reset());
  controls.querySelector("[name=record]").addEventListener("click", () => controller.record());

  /** Show a payload string (live_poke.live_payload or message_payload; empty: no photo yet). */
  async function load(text) {
    const ticket = ++live.loads;
    live.renderer?.release();
    Object.assign(live, { basis: null, sim: null, renderer: null, grab: null, pending: null, segment: null, log: [] });
    canvas.hidden = true;
    controls.hidden = true;
    if (!text) {
      say("Upload a photo (or pick an example) to poke it live.");
      return;
    }
    const basis = parseLiveBasis(text);
    if (basis.message) {
      say(basis.message);
      return;
    }
    const photo = new Image();
    photo.src = basis.imageUrl;
    await photo.decode();
    if (ticket !== live.loads) return;
    const target = freshCanvas(basis.width, basis.height);
    target.hidden = true;
    const kinds = { auto: [WebGLRenderer, CanvasRenderer], webgl2: [WebGLRenderer], "2d": [CanvasRenderer] }[renderer];
    let made = null;
    for (const kind of kinds) {
      try {
        made = kind.create(target, basis, photo);
      } catch (error) {
        console.warn(`live poke: ${kind.name} failed:`, error);
      }
      if (made) break;
    }
    if (!made) {
      say("This browser can draw neither WebGL2 nor Canvas 2D, so the photo cannot move live here. " +
          "Poke with the Poke button instead.");
      return;
    }
    Object.assign(live, { basis, sim: new ModalSimulator(basis), renderer: made, strength: 1 });
    for (const [name, input] of Object.entries(sliders)) {
      [input.min, input.max] = basis.controls[name];
      input.value = name === "strength" ? 1 : basis.params[name];
      input.nextElementSibling.value = Number(input.value).toFixed(2);
    }
    made.draw(live.sim.q, live.sim.limit);
    target.hidden = false;
    controls.hidden = false;
    const kept = (100 * basis.complianceKept).toFixed(1);
    info.textContent = `${made.name} · ${basis.modes} modes (${kept} % of the motion) · ${(basis.bytes / 1e6).toFixed(2)} MB`;
    say("Press, drag and let go: the photo follows, then sways and settles.");
    target.livePoke = controller;
  }

  const controller = {
    load,
    get basis() { return live.basis; },
    get simulator() { return live.sim; },
    get rendererName() { return live.renderer?.name ?? null; },
    get log() { return live.log; },

    /** Scene back at rest, log cleared. */
    reset() {
      if (!live.sim) return;
      live.grab = null; live.pending = null; live.segment = null; live.log = [];
      live.sim.reset(now());
      live.renderer.draw(live.sim.q, live.sim.limit);
    },

    /** A flick (dynamics' impulse, hold = 0) at photo point (x, y) with force (dx, dy) px, now. */
    impulse(x, y, dx, dy) {
      const t = now();
      beginInteraction(t);
      live.sim.kick(live.sim.modalInput(x, y, dx, dy, true));
      logPoke({ x, y, dx, dy, start: live.sim.time }, 0);
      wake();
    },

    /** The recording sent to the server (live_poke.parse_interaction), or null when nothing was done yet. */
    recording() {
      const pokes = [...live.log];
      if (live.segment) logPoke(live.segment, Math.max(now() - live.segment.start, 0), pokes); // a drag still held
      if (!pokes.length) return null;
      const { damping, stiffness } = live.sim;
      return { width: live.basis.width, height: live.basis.height, pokes, params: { damping, stiffness } };
    },

    record() {
      const recording = live.sim && controller.recording();
      if (!recording) {
        say("Drag the photo first; then Record renders that interaction as a video.");
        return;
      }
      trigger("record", recording);
      say("Recording sent: the server renders it as a video (under Response).");
    },

    /**
     * Simulate a poke on a fresh simulator with this page's code, as dynamics.modal_coordinates does in Python:
     * poke {x, y, dx, dy, hold} at time 0, sampled every dt seconds for steps steps (time 0 included). Returns
     * {q: [[re, im, ...] per step], displacement: [[dx, dy] at (x, y) per step]}.
     */
    trajectory({ x, y, dx, dy, hold = 0 }, steps, dt, params = {}) {
      const sim = new ModalSimulator(live.basis);
      sim.setParams({ ...live.basis.params, ...params });
      const input = sim.modalInput(x, y, dx, dy, hold === 0);
      if (hold === 0) sim.kick(input); else sim.setForce(input);
      const q = [], displacement = [];
      for (let n = 0; n < steps; n++) {
        const t = n * dt;
        if (hold > 0 && sim.forced() && t >= hold) { sim.advanceTo(hold); sim.clearForce(); }
        sim.advanceTo(t);
        q.push(Array.from(sim.q));
        displacement.push(sim.displacementAt(x, y));
      }
      return { q, displacement };
    },

    /** Start collecting frame and latency times (ms); sync: finish each frame on the GPU before its latency. */
    measure(sync = false) {
      live.stats = { frames: [], latencies: [] };
      live.syncLatency = sync;
    },
    get stats() { return live.stats; },

    /** Milliseconds one frame takes to draw and finish, averaged over n frames of the current state. */
    timeDraws(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        live.renderer.draw(live.sim.q, live.sim.limit);
        live.renderer.finish();
      }
      return (performance.now() - start) / n;
    },

    /** The frame for the current state, drawn now: Uint8Array (height, width, 4) RGBA, top row first. */
    pixels() {
      live.renderer.draw(live.sim.q, live.sim.limit);
      return live.renderer.pixels();
    },
  };
  return controller;
}

/** The app's mount (gr.HTML js_on_load): the block's value is the payload; Record triggers the "record" event. */
function mountLivePokeInGradio(element, trigger, props, watch) {
  const controller = mountLivePoke(element, { trigger });
  watch("value", () => controller.load(props.value));
  controller.load(props.value);
}
