// matrix-js-sdk as a client app uses it, against mediarepo behind a reverse
// proxy: log in, upload an image, download it through the authenticated
// route, ask for a thumbnail, read the media config. Prints one JSON object
// with what it saw; the Go suite asserts on it.
//
//   node client.mjs <proxy base URL> <user> <password> <image file>
import { readFile } from "node:fs/promises";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const [baseUrl, user, password, imagePath] = process.argv.slice(2);
logger.disableAll?.(); // quiet: the Go suite reads our last line
const out = {};
try {
  const client = sdk.createClient({ baseUrl });
  const login = await client.login("m.login.password", {
    identifier: { type: "m.id.user", user },
    password,
  });
  const token = login.access_token;
  const authed = sdk.createClient({ baseUrl, accessToken: token, userId: login.user_id });

  const image = await readFile(imagePath);
  const upload = await authed.uploadContent(new Blob([image], { type: "image/png" }), {
    name: "from js.png",
    type: "image/png",
  });
  out.content_uri = upload.content_uri;

  const headers = { Authorization: `Bearer ${token}` };
  const dl = await fetch(authed.mxcUrlToHttp(upload.content_uri, undefined, undefined, undefined, false, true, true), { headers });
  const body = Buffer.from(await dl.arrayBuffer());
  out.download_status = dl.status;
  out.download_matches = body.equals(image);
  out.download_disposition = dl.headers.get("content-disposition");

  const th = await fetch(authed.mxcUrlToHttp(upload.content_uri, 96, 96, "crop", false, true, true), { headers });
  out.thumbnail_status = th.status;
  out.thumbnail_type = th.headers.get("content-type");
  out.thumbnail_bytes = (await th.arrayBuffer()).byteLength;

  const cfg = await authed.getMediaConfig(true);
  out.upload_size = cfg["m.upload.size"];
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
}
console.log(JSON.stringify(out));
