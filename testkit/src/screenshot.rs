//! Pages looked at as a person would: headless Chromium's screenshot of a local page, and its
//! pixels.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium on PATH (`./scripts/test.sh` installs Debian's).
pub fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
        .expect("chromium is installed (./scripts/test.sh installs Debian's chromium)")
}

/// Saves a `width` × `height` screenshot of the local file `page` as the PNG `shot`, with a
/// fresh profile under `dir`; panics with Chromium's stderr if none was written.
pub fn screenshot(page: &Path, shot: &Path, dir: &Path, (width, height): (u32, u32)) {
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            // This machine's network is closed: no background connections to refuse.
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PNG's width, height and pixels as RGB.
pub fn pixels(png_file: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).expect("the PNG exists"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let step = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, px)
}

/// Whether pixel `p` is colour `c`, each channel within `tolerance`.
pub fn near(p: [u8; 3], c: [u8; 3], tolerance: i32) -> bool {
    p.iter()
        .zip(c)
        .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= tolerance)
}
