//! `reelfarm studio` in a real headless Chromium, driven over the W3C WebDriver HTTP API by
//! ChromeDriver: the frame changes with the scrubber, layers are named under the pointer, the
//! contact sheet follows edits of template.json, and a broken value shows in the problem list
//! until it is fixed. And `reelfarm preview`: the same contact sheet as one PNG.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{bin, copy_dir, demo_template, Proc};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A temporary copy of the demo template.
fn template_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("order-delivered");
    copy_dir(&demo_template(), &dir);
    (tmp, dir)
}

/// A process started in its own process group, which is killed as a whole when dropped
/// (ChromeDriver's browser with it).
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A WebDriver session.
struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let value: Value = resp.json().await.expect("WebDriver answers JSON");
        assert!(status.is_success(), "{method} {path}: {status}: {value}");
        value["value"].clone()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` until it returns something other than null or false, or fails after
    /// `secs` seconds with `what` and the page's messages.
    async fn wait(&self, what: &str, secs: u64, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.exec(script, args.clone()).await;
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.exec(PAGE_MESSAGES, json!([])).await;
                panic!("timed out after {secs} s waiting for {what}; the page says: {page}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What the page shows besides pictures: frame and grid errors, problems.
const PAGE_MESSAGES: &str = r#"
return {
  frame_error: document.getElementById('frame-error').textContent,
  grid_error: document.getElementById('grid-error').textContent,
  problems: [...document.querySelectorAll('#problems li')].map(li => li.textContent),
  frame: document.getElementById('frame').src,
};"#;

/// A hash of the pixel data of every image `arguments[0]` selects, through a canvas, with the
/// image's data attributes; null until all of them have loaded (the player's frame: the one
/// its `src` names).
const IMAGE_HASHES: &str = r#"
const imgs = [...document.querySelectorAll(arguments[0])];
if (!imgs.length) return null;
const out = [];
for (const img of imgs) {
  if (img.dataset.failed === img.src) {
    out.push({lang: img.dataset.lang, key: img.dataset.key, t: img.dataset.t, failed: true});
    continue;
  }
  if (!img.complete || img.naturalWidth === 0) return null;
  if (img.id === 'frame' && img.dataset.loaded !== img.src) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let h = 2166136261;
  for (let i = 0; i < d.length; i++) { h ^= d[i]; h = Math.imul(h, 16777619) >>> 0; }
  out.push({lang: img.dataset.lang, key: img.dataset.key, t: img.dataset.t,
            width: c.width, height: c.height, hash: h.toString(16)});
}
return out;"#;

/// The contact sheet's cells (language, values key, time, pixel hash) once all have loaded.
async fn grid_cells(s: &Session, what: &str) -> Vec<Value> {
    let v = s.wait(what, 90, IMAGE_HASHES, json!(["#grid img"])).await;
    v.as_array().expect("cells").clone()
}

fn cell<'a>(cells: &'a [Value], lang: &str, t: &str) -> &'a Value {
    cells
        .iter()
        .find(|c| {
            c["lang"] == lang
                && c["t"] == t
                && !c["key"].as_str().unwrap_or("").starts_with("worst:")
        })
        .unwrap_or_else(|| panic!("no sample cell for {lang} at {t} s in {cells:?}"))
}

fn require(path: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} not found: the studio's browser test needs Debian's chromium and chromium-driver \
         packages (scripts/setup installs them)"
    );
}

/// Starts `reelfarm studio` on `dir`, returning the process and its URL.
fn start_studio(dir: &Path, out: &Path) -> (Proc, String) {
    let mut child = bin()
        .args(["studio"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start reelfarm studio");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("studio prints its URL");
    // The rest of its output is read and dropped, so that the pipe never fills.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line
        .trim()
        .strip_prefix("studio: ")
        .unwrap_or_else(|| panic!("expected `studio: URL`, got {line:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0/"),
        "{url}"
    );
    (proc, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_in_headless_chromium() {
    require(CHROMIUM);
    require(CHROMEDRIVER);
    let (tmp, dir) = template_copy();
    let out = tmp.path().join("previews");
    let (_studio, url) = start_studio(&dir, &out);
    let http = reqwest::Client::new();

    // ChromeDriver on a free port, in its own process group.
    let port = free_port();
    let driver = {
        use std::os::unix::process::CommandExt as _;
        Group(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver"),
        )
    };
    let wd = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = match http.get(format!("{wd}/status")).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .map(|v| v["value"]["ready"] == true),
            Err(_) => None,
        };
        if ready == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1360,1400"],
        },
    }}});
    let resp: Value = http
        .post(format!("{wd}/session"))
        .json(&caps)
        .send()
        .await
        .expect("new session")
        .json()
        .await
        .expect("session JSON");
    let id = resp["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {resp}"))
        .to_owned();
    let s = Session {
        http: http.clone(),
        base: format!("{wd}/session/{id}"),
    };

    // The page, with a contact sheet of Hindi and Tamil at 2 s.
    s.call(
        reqwest::Method::POST,
        "/url",
        Some(json!({"url": format!("{url}?langs=hi,ta&times=2")})),
    )
    .await;

    // The first frame, then the frame at 2 s after moving the scrubber: different pixels.
    let first = s
        .wait("the first frame", 60, IMAGE_HASHES, json!(["#frame"]))
        .await;
    assert_eq!(first[0]["t"], "0");
    assert_eq!(first[0]["width"], 640);
    assert_eq!(first[0]["height"], 360);
    s.exec(
        "const sc = document.getElementById('scrubber'); sc.value = '2'; \
         sc.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .await;
    let moved = s
        .wait(
            "the frame at 2 s",
            60,
            IMAGE_HASHES,
            json!(["#frame[data-t='2']"]),
        )
        .await;
    assert_ne!(
        first[0]["hash"], moved[0]["hash"],
        "the frame did not change when the scrubber moved"
    );

    // Layer boxes are outlined, and the layer under the pointer is named.
    let hover = s
        .wait(
            "the greeting's box",
            20,
            "const p = document.querySelector('#boxes polygon[data-id=\"greeting\"]');
             if (!p) return null;
             const r = p.getBoundingClientRect();
             document.getElementById('stage').dispatchEvent(new MouseEvent('mousemove',
               {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true}));
             return document.getElementById('hover').textContent;",
            json!([]),
        )
        .await;
    assert!(
        hover
            .as_str()
            .unwrap_or("")
            .starts_with("Layer greeting (text"),
        "{hover}"
    );

    // The contact sheet: Hindi and Tamil at 2 s, different from each other.
    let cells = grid_cells(&s, "the contact sheet").await;
    let hi = cell(&cells, "hi", "2").clone();
    let ta = cell(&cells, "ta", "2").clone();
    assert_ne!(
        hi["hash"], ta["hash"],
        "the Hindi and Tamil cells are the same"
    );
    assert!(cells.iter().all(|c| c["lang"] == "hi" || c["lang"] == "ta"));
    for lang in ["hi", "ta"] {
        assert!(
            cells.iter().any(|c| c["lang"] == lang
                && c["key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("worst:longest `first_name`"))),
            "no worst-case cell for the longest first name in {lang}: {cells:?}"
        );
    }

    let shot = s.call(reqwest::Method::GET, "/screenshot", None).await;
    let png = base64_decode(shot.as_str().expect("screenshot is base64"));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    if let Ok(path) = std::env::var("REELFARM_STUDIO_SCREENSHOT") {
        std::fs::write(&path, &png).expect("write the screenshot");
    }

    // An edit of the Hindi greeting reloads the sheet: the Hindi cell changes, Tamil's does not.
    let manifest_path = dir.join("template.json");
    let original = std::fs::read_to_string(&manifest_path).expect("template.json");
    let edited = original.replacen(
        "\"hi\": \"नमस्ते {{first_name}}!",
        "\"hi\": \"नमस्ते नमस्ते {{first_name}}!",
        1,
    );
    assert_ne!(edited, original, "the Hindi greeting was not found");
    std::fs::write(&manifest_path, &edited).expect("edit template.json");
    let hi_hash = hi["hash"].clone();
    let changed = s
        .wait(
            "the Hindi cell to change",
            90,
            &format!(
                "const all = (() => {{ {IMAGE_HASHES} }})();
                 if (!all) return null;
                 const hi = all.find(c => c.lang === 'hi' && c.t === '2' && !c.key.startsWith('worst:'));
                 return hi && hi.hash && hi.hash !== arguments[1] ? all : null;"
            ),
            json!(["#grid img", hi_hash]),
        )
        .await;
    let cells = changed.as_array().expect("cells");
    assert_eq!(
        cell(cells, "ta", "2")["hash"],
        ta["hash"],
        "the Tamil cell changed with the Hindi text"
    );

    // A broken value: the problem list names the layer and field, frames answer with a JSON
    // error, and the studio keeps running.
    let broken = edited.replacen("\"font_size\": 84", "\"font_size\": 0", 1);
    assert_ne!(broken, edited);
    std::fs::write(&manifest_path, &broken).expect("break template.json");
    let problem = s
        .wait(
            "the font_size problem in the list",
            20,
            "const li = [...document.querySelectorAll('#problems li')]
               .find(li => li.dataset.layer === 'greeting' && li.textContent.includes('font_size'));
             return li ? li.textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        problem.as_str().unwrap_or("").contains("field font_size"),
        "{problem}"
    );
    let api = http
        .get(format!("{url}api/frame?lang=hi&sample=hi-rahul&t=1"))
        .send()
        .await
        .expect("frame request");
    assert_eq!(api.status(), reqwest::StatusCode::CONFLICT);
    let body: Value = api.json().await.expect("JSON error");
    assert!(
        body["error"].as_str().unwrap_or("").contains("problems"),
        "{body}"
    );
    assert!(
        body["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["layer"] == "greeting")),
        "{body}"
    );
    s.wait(
        "the page to show the frame error",
        20,
        "return document.getElementById('frame-error').textContent || null;",
        json!([]),
    )
    .await;

    // Fixed: the template's problems leave the list (the deep checks' findings about
    // worst-case values may stay) and frames come back.
    std::fs::write(&manifest_path, &original).expect("fix template.json");
    s.wait(
        "the problem list to clear",
        20,
        "return document.querySelector('#problems li[data-source=\"template\"]') === null \
           && document.querySelector('#problems li') !== null;",
        json!([]),
    )
    .await;
    s.wait(
        "the frame after the fix",
        60,
        &format!("const r = (() => {{ {IMAGE_HASHES} }})(); return r && !r[0].failed ? r : null;"),
        json!(["#frame"]),
    )
    .await;

    s.call(reqwest::Method::DELETE, "", None).await;
    drop(driver);
}

/// Standard base64 (WebDriver screenshots), without a crate for it.
fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn preview_writes_the_contact_sheet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sheet = tmp.path().join("sheet.png");
    let out = bin()
        .args(["preview"])
        .arg(demo_template())
        .arg("--out")
        .arg(&sheet)
        .args(["--times", "2,5", "--langs", "hi,ta", "--cell-width", "160"])
        .output()
        .expect("run reelfarm preview");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&sheet).expect("a PNG").to_rgba8();
    // Two columns of 160 px cells with 4 px gaps; rows of 90 px frames and 24 px labels.
    let (cell_w, cell_h, label, gap) = (160u32, 90u32, 24u32, 4u32);
    assert_eq!(img.width(), 2 * (cell_w + gap) + gap);
    let pitch = cell_h + label + gap;
    assert_eq!((img.height() - gap) % pitch, 0, "height {}", img.height());
    let rows = (img.height() - gap) / pitch;
    assert!(rows >= 2, "a row each for hi and ta at least, got {rows}");
    let crop = |col: u32, row: u32| {
        image::imageops::crop_imm(
            &img,
            gap + col * (cell_w + gap),
            gap + row * pitch,
            cell_w,
            cell_h,
        )
        .to_image()
        .into_raw()
    };
    assert_ne!(crop(0, 0), crop(1, 0), "2 s and 5 s look the same");
    assert_ne!(
        crop(0, 0),
        crop(0, rows - 1),
        "the first (hi) and last (ta) rows look the same"
    );
    // The label strip has ink.
    let strip = image::imageops::crop_imm(&img, gap, gap + cell_h, cell_w, label).to_image();
    assert!(strip.pixels().any(|p| p.0[0] > 150), "no label drawn");

    let bad = bin()
        .args(["preview"])
        .arg(demo_template())
        .arg("--out")
        .arg(&sheet)
        .args(["--langs", "hi,xx"])
        .output()
        .expect("run reelfarm preview");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--langs") && err.contains("`xx` is not one of the template's languages"),
        "{err}"
    );
}
