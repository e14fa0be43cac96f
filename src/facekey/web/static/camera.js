// The camera check shared by the enrolment page and the privacy portal.
//
// The server opens a challenge liveness session for this browser and names its challenges;
// the page shows a prompt for each one while it takes pictures, then sends them (JPEG, in the
// request body) to be decided. Pictures live only in memory: nothing is written to storage.

const INTERVAL_MS = 300;   // between pictures
const LEAD_MS = 700;       // before the first picture: the person settles in view
const MAX_FRAMES = 20;     // the server's limit per check
const MAX_SPAN_MS = 9500;  // the server allows 10 s from the first picture to the last

export const CAMERA_WORDS = {
  NotFoundError: "No camera was found. Connect a camera, or use a device that has one.",
  OverconstrainedError: "No camera was found. Connect a camera, or use a device that has one.",
  NotAllowedError:
    "Camera access was refused. Allow this site to use the camera in your browser's settings, then start again.",
  SecurityError:
    "Camera access was refused. Allow this site to use the camera in your browser's settings, then start again.",
  NotReadableError: "The camera is busy: close other programs that use it, then start again.",
  unsupported: "This browser cannot use a camera here. Try an up-to-date browser.",
};

export class CheckError extends Error {}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

/** POST a form to the server; the JSON answer, or a CheckError with the server's words. */
export async function post(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      body: body ?? new FormData(),
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken() },
    });
  } catch {
    throw new CheckError("The server could not be reached. Check your connection and try again.");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new CheckError(answer.message || "Something went wrong. Please try again.");
  }
  return answer;
}

async function openCamera(video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CheckError(CAMERA_WORDS.unsupported);
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    video.srcObject = stream;
    await video.play();
    return stream;
  } catch (error) {
    throw new CheckError(CAMERA_WORDS[error.name] || CAMERA_WORDS.NotReadableError);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function picture(canvas, video) {
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
}

/** Pictures while each prompt is shown: one to start from, then a run per challenge. */
async function capture(video, prompts, ui) {
  const perPrompt = Math.min(8, Math.floor((MAX_FRAMES - 2) / prompts.length));
  const steps = [{ prompt: "Look at the camera", count: 1 }].concat(
    prompts.map((prompt) => ({ prompt, count: perPrompt })),
  );
  const total = steps.reduce((sum, step) => sum + step.count, 0);
  ui.progress.max = total;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const frames = [];
  ui.say(steps[0].prompt);
  await sleep(LEAD_MS);
  for (const step of steps) {
    ui.say(step.prompt);
    for (let i = 0; i < step.count; i += 1) {
      const at = Math.round(performance.now());
      if (frames.length && at - frames[0].at > MAX_SPAN_MS) return frames;
      frames.push({ at, blob: await picture(canvas, video) });
      ui.progress.value = frames.length;
      ui.progress.textContent = `${frames.length} of ${total}`;
      await sleep(Math.max(0, INTERVAL_MS - (performance.now() - at)));
    }
  }
  return frames;
}

/**
 * Run the camera check of the page's area (base: "/enrol" or "/me"); resolves when the
 * server says the check is live, throws a CheckError with words otherwise.
 */
export async function cameraCheck(base, ui) {
  ui.say("Starting…");
  const stream = await openCamera(ui.video);
  let frames;
  try {
    const opened = await post(`${base}/check/start`);
    frames = await capture(ui.video, opened.prompts, ui);
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    ui.video.srcObject = null;
  }
  ui.say("Checking…");
  const body = new FormData();
  frames.forEach((frame, i) => body.append("frames", frame.blob, `frame-${i}.jpg`));
  body.append("timestamps", JSON.stringify(frames.map((frame) => frame.at)));
  const decided = await post(`${base}/check/frames`, body);
  if (!decided.live) throw new CheckError(decided.message);
  ui.say("Done.");
}

/** The camera elements of camera.html. */
export function cameraUi() {
  const prompt = document.getElementById("prompt");
  const error = document.getElementById("camera-error");
  return {
    video: document.getElementById("preview"),
    progress: document.getElementById("progress"),
    say: (text) => { prompt.textContent = text; },
    fail: (text) => { error.textContent = text; prompt.textContent = ""; },
    clear: () => { error.textContent = ""; },
  };
}
