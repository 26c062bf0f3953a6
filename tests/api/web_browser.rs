//! The "Done when" journey of the web UI in a real browser: `tests/browser/journey.py` drives
//! Debian's Chromium through chromedriver (WebDriver) against this server, takes screenshots of
//! the main pages and runs axe-core on them. The screenshots go to the target directory, or to
//! `docs/screenshots/` with `UPDATE_SCREENSHOTS=1` (so that a test run leaves the tree clean). `scripts/test-tools.sh` installs
//! Chromium, chromedriver, Selenium and axe-core; without them this test fails and says so.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::{ADMIN_PASSWORD, Backend, TestApp};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_a_merchant_and_an_admin_go_through_the_shop_in_a_browser() {
    // The demo shop (two merchants' products) is what the buyer buys from.
    let app = TestApp::spawn_with(Backend::Memory, &[("DEMO_SEED", "true")]).await;
    let root = repository();
    let screenshots = match std::env::var_os("UPDATE_SCREENSHOTS") {
        Some(_) => root.join("docs/screenshots"),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    };
    let axe = root.join("tests/browser/.vendor/axe-core/axe.min.js");
    assert!(axe.exists(), "{} is missing: run scripts/test-tools.sh", axe.display());
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(std::path::Path::new(tool).exists(), "{tool} is missing: run scripts/test-tools.sh");
    }
    let run = tokio::process::Command::new("python3")
        .arg(root.join("tests/browser/journey.py"))
        .env("BASE_URL", &app.base)
        .env("ADMIN_EMAIL", &app.admin.email)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SCREENSHOTS_DIR", &screenshots)
        .env("AXE_JS", &axe)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the journey ends within four minutes")
        .expect("python3 runs (scripts/test-tools.sh installs what the journey needs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser journey failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("journey done"), "{stdout}\n{stderr}");
    app.assert_ledger_ok().await;
}
