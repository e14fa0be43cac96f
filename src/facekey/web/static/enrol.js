// The enrolment page: the choices, then the camera check, then the enrolment itself.
import { CheckError, cameraCheck, cameraUi, post } from "./camera.js";

const form = document.getElementById("enrol-form");
const steps = {
  terms: document.getElementById("step-terms"),
  camera: document.getElementById("step-camera"),
  done: document.getElementById("step-done"),
};
const formError = document.getElementById("form-error");
const start = document.getElementById("start");
const ui = cameraUi();

function show(name, heading) {
  Object.entries(steps).forEach(([key, section]) => { section.hidden = key !== name; });
  if (heading) document.getElementById(heading).focus();
}

/** What is wrong with the choices, in words; null when they will do. */
function problem() {
  const purposes = new FormData(form).getAll("purposes");
  if (!purposes.includes("payment") && !purposes.includes("personalization")) {
    return "Choose paying by face, personalised offers, or both.";
  }
  const phone = form.elements.phone.value.trim();
  const pin = form.elements.pin.value.trim();
  if (!phone && !pin) return "Give a phone number or a PIN (or both).";
  if (pin && !/^[0-9]{4,8}$/.test(pin)) return "The PIN must be 4 to 8 digits.";
  if (phone && (phone.replace(/[^0-9]/g, "").length < 7)) return "The phone number looks too short.";
  return null;
}

form.querySelector('button[type="submit"]').disabled = false;

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const wrong = problem();
  formError.textContent = wrong || "";
  if (wrong) return;
  show("camera", "camera-heading");
});

document.getElementById("back").addEventListener("click", () => show("terms", "terms-heading"));

start.addEventListener("click", async () => {
  start.disabled = true;
  ui.clear();
  try {
    await cameraCheck("/enrol", ui);
    const enrolled = await post("/enrol/complete", new FormData(form));
    document.getElementById("done-message").textContent = enrolled.message;
    document.getElementById("next-person").hidden = !enrolled.kiosk;
    show("done", "done-heading");
  } catch (error) {
    ui.fail(error instanceof CheckError ? error.message : "Something went wrong. Please try again.");
    start.textContent = "Try the camera check again";
  } finally {
    start.disabled = false;
  }
});
