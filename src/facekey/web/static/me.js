// The privacy portal's sign-in with the face: the camera check, then the phone's last digits.
import { CheckError, cameraCheck, cameraUi, post } from "./camera.js";

const form = document.getElementById("face-form");
const digits = document.getElementById("digits");
const start = document.getElementById("start");
const ui = cameraUi();
start.disabled = false;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  ui.clear();
  if (!/^[0-9]{4}$/.test(digits.value.trim())) {
    ui.fail("Type the last four digits of your phone number first.");
    digits.focus();
    return;
  }
  start.disabled = true;
  try {
    await cameraCheck("/me", ui);
    const body = new FormData();
    body.append("digits", digits.value.trim());
    const answer = await post("/me/face", body);
    window.location.assign(answer.next);
  } catch (error) {
    ui.fail(error instanceof CheckError ? error.message : "Something went wrong. Please try again.");
    start.textContent = "Try the camera check again";
  } finally {
    start.disabled = false;
  }
});
