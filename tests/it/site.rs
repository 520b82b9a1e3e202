//! The residents' pages (issue 25): `/`, `/faq?q=`, `/faq/{id}` (feedback, QR code), the
//! tools. Plain HTTP against the real app on 127.0.0.1:0 (SQLite), the real `yidi serve`
//! for its logs, and a real headless chromium (the console's harness) that searches, opens
//! an entry, follows a related link, sends feedback and fills both forms at 1440×900 and
//! 390×844, checks the page width and runs axe-core (`tests/vendor/axe-core/`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use yidi::channels::http::{self, AppState};
use yidi::store::Store;

use crate::console::{
    Cdp, Driver, full_page_png, no_horizontal_scroll, screenshots, wait_for, wait_for_text,
};
use crate::db::TestDb;
use crate::helpers::{assistant, repo};

/// The real app on 127.0.0.1:0; stopped on drop.
struct Site {
    addr: SocketAddr,
    client: reqwest::Client,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

impl Site {
    async fn start() -> Site {
        Site::start_with(None).await
    }

    /// With these limits instead of the defaults.
    async fn start_with(limits: Option<yidi::config::Limits>) -> Site {
        let db = TestDb::sqlite();
        let store = Store::connect(&db.url).await.expect("connect + migrate");
        let state = match limits {
            Some(limits) => AppState::from_conversations(
                yidi::conversation::Conversations::new(assistant(), store.clone())
                    .with_limits(&limits),
            ),
            None => AppState::new(assistant(), store.clone()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            http::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Site {
            addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            shutdown: Some(tx),
            _db: db,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The text of an HTML page without its tags (entities of maud's escaping decoded).
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every phone-number-like run in a text: digits joined by dashes, 7 digits or more.
fn phone_numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain([' ']) {
        if c.is_ascii_digit() || (c == '-' && !run.is_empty()) {
            run.push(c);
        } else {
            let digits = run.chars().filter(char::is_ascii_digit).count();
            if digits >= 7 && run.contains('-') {
                out.push(run.trim_end_matches('-').to_string());
            }
            run.clear();
        }
    }
    out
}

#[tokio::test]
async fn the_home_page_has_search_topics_and_only_known_hotlines() {
    let site = Site::start().await;
    let (status, headers, body) = site.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<html lang=\"zh-CN\">"));
    // a plain form that works without the script
    assert!(body.contains("action=\"/faq\" method=\"get\""), "{body}");
    for topic in ["备案", "直接结算", "零星报销", "刷卡问题", "特殊情况"] {
        assert!(
            body.contains(&format!("\">{topic}</h2>")),
            "topic {topic}: {body}"
        );
    }
    // every entry of the knowledge falls under one of the five topics (none left over)
    assert!(
        !body.contains("topic-other"),
        "an entry in no topic: {body}"
    );
    // every entry is listed under its topic, each once
    let a = assistant();
    let topics = &body[..body.find("id=\"hotlines\"").unwrap()];
    for e in &a.knowledge.faqs {
        let link = format!("href=\"/faq/{}\">", e.id);
        assert_eq!(topics.matches(&link).count(), 1, "{}", e.id);
    }
    // phone numbers only from the region data
    let known: Vec<String> = a
        .checklist_texts
        .regions
        .iter()
        .filter_map(|r| r.hotline.clone())
        .collect();
    assert!(!known.is_empty());
    let shown = phone_numbers(&text_of(&body));
    assert!(!shown.is_empty(), "the hotlines are shown");
    for n in &shown {
        assert!(
            known.contains(n),
            "{n} is not a hotline of knowledge/regions/"
        );
    }
    // the API document and the console stay reachable, unobtrusively
    assert!(body.contains("id=\"docs-link\" href=\"/docs\""));
    assert!(body.contains("id=\"console-link\" href=\"/console\""));
    // the console's headers; no inline script or style
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        !body.contains("<script>") && !body.contains(" style="),
        "{body}"
    );
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no CDN"
    );
    // revalidated with its ETag: 304 without a body
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(headers["cache-control"], "no-cache");
    let r = site
        .client
        .get(site.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.text().await.unwrap().is_empty());
    // the static files
    for (path, kind) in [
        ("/assets/site.css", "text/css"),
        ("/assets/site.js", "text/javascript"),
    ] {
        let (status, headers, body) = site.get(path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        assert!(headers.contains_key("etag"));
        assert!(body.len() > 500);
    }
}

#[tokio::test]
async fn an_entry_page_leads_with_the_brief_and_cites_its_documents() {
    let site = Site::start().await;
    let a = assistant();
    let e = a.knowledge.faq("card-failure").unwrap();
    let (status, headers, body) = site.get("/faq/card-failure").await;
    assert_eq!(status, StatusCode::OK);
    // title, description and the link preview show the question and the brief
    assert!(body.contains(&format!("<title>{} · 异地就医问答</title>", e.question)));
    assert!(body.contains(&format!(
        "<meta name=\"description\" content=\"{}\">",
        e.brief
    )));
    assert!(body.contains("<meta property=\"og:title\""));
    assert!(body.contains(&format!(
        "<meta property=\"og:description\" content=\"{}\">",
        e.brief
    )));
    // the brief first, then the full text
    let text = text_of(&body);
    let brief_at = text.find(&e.brief).expect("the brief");
    let first_line = e.answer.lines().next().unwrap();
    let full_at = text.find(first_line).expect("the full text");
    assert!(brief_at < full_at);
    // sources by title, with date and tier
    for p in a.knowledge.provenance(e) {
        assert!(
            text.contains(&format!("《{}》", p.document)),
            "{}",
            p.document
        );
        if let Some(d) = p.date {
            assert!(text.contains(&d.to_string()));
        }
        assert!(text.contains(p.tier.label()));
    }
    // related entries as links
    for id in &e.related {
        assert!(body.contains(&format!("href=\"/faq/{id}\"")), "{id}");
    }
    // feedback without script, the QR code one click away
    assert!(body.contains("action=\"/faq/card-failure/feedback\""));
    assert!(body.contains("name=\"helpful\" value=\"true\""));
    assert!(body.contains("href=\"/faq/card-failure/qr\""));
    // cacheable, validated by content
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().unwrap();
    let r = site
        .client
        .get(site.url("/faq/card-failure"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // another entry has another validator
    let (_, other, _) = site.get("/faq/deductible").await;
    assert_ne!(other["etag"], headers["etag"]);
    // an unknown entry: a page that helps, 404
    let (status, _, body) = site.get("/faq/no-such-entry").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("没有找到这个问题") && body.contains("action=\"/faq\""));
}

#[tokio::test]
async fn feedback_from_the_page_lands_in_the_feedback_store() {
    let site = Site::start().await;
    let r = site
        .client
        .post(site.url("/faq/deductible/feedback"))
        .form(&[("helpful", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/faq/deductible?feedback=thanks#feedback"
    );
    assert_eq!(site.store.count("feedback").await.unwrap(), 1);
    let (status, headers, body) = site.get("/faq/deductible?feedback=thanks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("谢谢您的反馈"));
    assert_eq!(headers["cache-control"], "no-store");
    // a form without a verdict, or for no entry: a page, nothing stored
    let (status, body) = site.post_form("/faq/deductible/feedback", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("没有收到您的评价"));
    let (status, _) = site
        .post_form("/faq/nothing/feedback", &[("helpful", "true")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(site.store.count("feedback").await.unwrap(), 1);
}

#[tokio::test]
async fn the_qr_code_encodes_the_pages_absolute_address() {
    let site = Site::start().await;
    let (status, headers, svg) = site.get("/faq/deductible/qr.svg").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/svg+xml");
    // the same code the qrcode crate makes for this server's address of the page
    let expected = |url: &str| {
        qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
            .unwrap()
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build()
    };
    assert_eq!(
        svg,
        expected(&format!("http://{}/faq/deductible", site.addr))
    );
    // behind an HTTPS proxy, under its host name
    let r = site
        .client
        .get(site.url("/faq/deductible/qr.svg"))
        .header("host", "yidi.example.cn")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        expected("https://yidi.example.cn/faq/deductible")
    );
    // the page to print for a counter: the question, the code and the address it encodes
    let (status, _, page) = site.get("/faq/deductible/qr").await;
    assert_eq!(status, StatusCode::OK);
    let e = assistant();
    let e = e.knowledge.faq("deductible").unwrap();
    assert!(page.contains(&format!("<h1>{}</h1>", e.question)));
    assert!(page.contains("src=\"/faq/deductible/qr.svg\""));
    assert!(page.contains(&format!(">http://{}/faq/deductible<", site.addr)));
}

#[tokio::test]
async fn a_question_nothing_answers_says_so_and_lands_in_the_inbox_masked() {
    let site = Site::start().await;
    let a = assistant();
    // the search's own decision, as /v1/faq/search makes it
    let q = "张家港参保，我的快递丢了找谁 身份证320582199001011234 电话13812345678";
    assert!(!a.search.search(q, 5).answered);
    let path = format!("/faq?q={}", urlencode(q));
    let (status, headers, body) = site.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "private, no-store");
    assert!(body.contains("没有找到可靠的答案"), "{body}");
    // the closest topics as links, the region's hotline (the question names 张家港)
    assert!(body.contains("id=\"closest-topics\""));
    assert!(body.contains("href=\"/#topic-"));
    assert!(body.contains("0512-12333"));
    assert!(!body.contains("苏州参保"), "only the region asked about");
    // in the agents' inbox, masked, once (a reload does not record it again)
    let (status, _, _) = site.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let inbox = site.store.unanswered(10).await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].question.contains("快递"));
    assert!(!inbox[0].question.contains("320582199001011234"));
    assert!(!inbox[0].question.contains("13812345678"));
    assert_eq!(inbox[0].session_id, None);
    // an answered question: the answer first, nothing recorded
    let (_, _, body) = site
        .get(&format!("/faq?q={}", urlencode("异地就医备案要带什么材料")))
        .await;
    assert!(body.contains("id=\"answer\""));
    assert!(body.contains("href=\"/faq/filing-materials\""));
    assert_eq!(site.store.unanswered(10).await.unwrap().len(), 1);
    // no question: back home
    let r = site.client.get(site.url("/faq?q=")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_resident_over_the_limit_gets_a_page_that_says_so() {
    let site = Site::start_with(Some(yidi::config::Limits {
        per_ip_per_minute: 1,
        per_ip_burst: 2,
        ..Default::default()
    }))
    .await;
    for _ in 0..2 {
        let (status, _, _) = site.get("/faq/deductible").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = site.get("/faq?q=%E8%B5%B7%E4%BB%98%E7%BA%BF").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("请求太频繁了"), "{body}");
    // the home page and the files are served from memory, not limited
    let (status, _, _) = site.get("/").await;
    assert_eq!(status, StatusCode::OK);
    // the JSON API keeps its JSON error
    let (status, headers, _) = site.get("/v1/faq/deductible").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn search_queries_are_never_logged() {
    let db = TestDb::sqlite();
    let server = crate::serve::ServeProcess::spawn(
        &["--addr", "127.0.0.1:0", "--database-url", &db.url],
        &[("YIDI_LOG", "debug")],
        &repo(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = "我的身份证320582199001011234丢了";
    rt.block_on(async {
        let r = reqwest::get(format!("{}/faq?q={}", server.base, urlencode(q)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    });
    // the request was logged (by its route), the query never
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("route=\"/faq\"") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = server.log();
    assert!(log.contains("route=\"/faq\""), "{log}");
    assert!(!log.contains("320582199001011234"), "{log}");
    assert!(!log.contains("身份证"), "{log}");
    assert!(!log.contains("%E8%BA%AB"), "{log}");
    server.terminate();
}

/// A reload (SIGHUP) renders the pages again: the edited text is served at once, under a
/// new validator, so a browser's copy is not reused.
#[test]
fn a_reload_changes_the_pages_and_their_validators() {
    let data = crate::helpers::data_copy();
    let db = TestDb::sqlite();
    let knowledge = data.path().join("knowledge");
    let dialogs = data.path().join("dialogs");
    let server = crate::serve::ServeProcess::spawn(
        &[
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
            "--knowledge",
            knowledge.to_str().unwrap(),
            "--dialogs",
            dialogs.to_str().unwrap(),
        ],
        &[("YIDI_LOG", "info")],
        data.path(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| {
        rt.block_on(async {
            let r = reqwest::get(format!("{}{path}", server.base))
                .await
                .unwrap();
            let etag = r.headers()["etag"].to_str().unwrap().to_string();
            (etag, r.text().await.unwrap())
        })
    };
    let (entry_tag, entry) = get("/faq/contacts");
    let (home_tag, _) = get("/");
    assert!(!entry.contains("（第二版）"));
    let file = knowledge.join("faq/contacts.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let edited = original.replace(
        "地址：张家港市华昌路3号",
        "地址：张家港市华昌路3号（第二版）",
    );
    assert_ne!(edited, original);
    std::fs::write(&file, &edited).unwrap();
    server.hangup();
    server.wait_for_log("reloaded the knowledge, dialogs and regions");
    let (new_tag, entry) = get("/faq/contacts");
    assert!(entry.contains("（第二版）"), "{entry}");
    assert_ne!(new_tag, entry_tag);
    // a page whose content did not change keeps its validator
    let (same_home, _) = get("/");
    assert_eq!(same_home, home_tag);
    server.terminate();
}

#[tokio::test]
async fn the_tools_give_the_chats_words_and_friendly_errors() {
    let site = Site::start().await;
    let a = assistant();
    // the estimate: the same engine and words as the chat
    let form = [
        ("insured_region", "suzhou"),
        ("scheme", "employee"),
        ("employment", "retired"),
        ("visit", "inpatient"),
        ("hospital_level", "3"),
        ("filing_type", "long_term_resident"),
        ("filed", "true"),
        ("total", "5万"),
        ("self_pay", "2000"),
    ];
    let (status, body) = site.post_form("/tools/estimate", &form).await;
    assert_eq!(status, StatusCode::OK);
    let mut slots: BTreeMap<String, String> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    slots.insert("total".into(), "50000".into());
    slots.insert("emergency".into(), "false".into());
    let estimate = a.estimate_for(&slots).unwrap();
    let text = text_of(&body);
    for line in yidi::render::estimate_text(&estimate).lines() {
        let line = line.strip_prefix("· ").unwrap_or(line);
        let line = line.strip_prefix("依据：").unwrap_or(line);
        for part in line.split('；') {
            let part = part.trim().trim_start_matches("可以在这些地方办理：");
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
    }
    assert!(body.contains("id=\"result\""));
    // the answers it rests on, in words, above the figures (they print with them)
    assert!(text.contains("按您填写的情况：参保地 苏州"), "{text}");
    assert!(text.contains("在职或退休 退休"), "{text}");
    // the checklist: the chat's text, item by item
    let form = [
        ("insured_region", "zhangjiagang"),
        ("care_location", "shanghai"),
        ("filing_type", "long_term_resident"),
        ("stage", "before_care"),
        ("visit", "inpatient"),
        ("by_proxy", "true"),
    ];
    let (status, body) = site.post_form("/tools/checklist", &form).await;
    assert_eq!(status, StatusCode::OK);
    let slots: BTreeMap<String, String> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (_, chat) = a.checklist_for(&slots).unwrap();
    let text = text_of(&body);
    for line in chat.lines() {
        let line = line
            .split_once(". ")
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map_or(line, |(_, rest)| rest);
        let line = line.strip_prefix("· ").unwrap_or(line);
        // the channels, one line in the chat, are a list on the page
        for part in line.split('；') {
            let part = part.trim().trim_start_matches("可以在这些地方办理：");
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
    }
    // mistakes: a message next to the field, in Chinese, never a 500
    let (status, body) = site
        .post_form(
            "/tools/estimate",
            &[("insured_region", "suzhou"), ("total", "好几千")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"f-total-error\""), "{body}");
    assert!(body.contains("没看懂这个金额"));
    assert!(body.contains("aria-invalid=\"true\""));
    // the value typed stays in the field
    assert!(body.contains("value=\"好几千\""));
    let (status, body) = site
        .post_form("/tools/checklist", &[("insured_region", "mars")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"f-insured_region-error\""));
    // a missing answer the engine needs is named at its field
    let (status, body) = site
        .post_form("/tools/checklist", &[("insured_region", "suzhou")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("class=\"error\""), "{body}");
    assert!(!body.contains("id=\"result\""));
    // not a form at all
    let r = site
        .client
        .post(site.url("/tools/estimate"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("没有收到表格内容"));
    // the empty forms are cacheable and validated
    let (status, headers, body) = site.get("/tools/checklist").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("etag"));
    assert!(body.contains("<label for=\"f-insured_region\">"));
}

// ---------------------------------------------------------------------------------------------
// The browser

/// axe-core's violations of impact `serious` or `critical` on the page shown, all
/// violations saved beside the screenshots.
async fn axe(browser: &Client, name: &str) -> Result<Vec<Value>, fantoccini::error::CmdError> {
    let source = std::fs::read_to_string(repo().join("tests/vendor/axe-core/axe.min.js")).unwrap();
    browser
        .execute(&format!("{source}\n;return true;"), vec![])
        .await?;
    let result = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })\n\
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, \
                  nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5) }))), \
                     e => done([{ id: 'axe-error', impact: 'critical', help: String(e) }]));",
            vec![],
        )
        .await?;
    let all = result.as_array().cloned().unwrap_or_default();
    std::fs::write(
        screenshots().join(format!("site-axe-{name}.json")),
        serde_json::to_string_pretty(&all).unwrap(),
    )
    .unwrap();
    Ok(all
        .into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect())
}

/// Types `text` into the field as a person does (one input event per character).
async fn type_into(
    browser: &Client,
    css: &str,
    text: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let e = browser.find(Locator::Css(css)).await?;
    e.clear().await?;
    e.send_keys(text).await?;
    Ok(())
}

async fn select(
    browser: &Client,
    slot: &str,
    value: &str,
) -> Result<(), fantoccini::error::CmdError> {
    browser
        .find(Locator::Css(&format!("#f-{slot}")))
        .await?
        .select_by_value(value)
        .await?;
    Ok(())
}

/// One resident's visit at one window size; screenshots named by `size`.
async fn visit(
    site: &Site,
    browser: &Client,
    size: &str,
    axe_found: &mut Vec<(String, Vec<Value>)>,
) -> Result<(), fantoccini::error::CmdError> {
    let dir = screenshots();
    let shot = |name: &str| dir.join(format!("site-{name}-{size}.png"));
    // the home page: search as you type
    browser.goto(&site.url("/")).await?;
    wait_for_text(browser, "h1", "异地就医问答").await;
    no_horizontal_scroll(browser).await?;
    axe_found.push((
        format!("home-{size}"),
        axe(browser, &format!("home-{size}")).await?,
    ));
    std::fs::write(shot("home"), full_page_png(browser).await?).unwrap();
    type_into(browser, "#q", "社保卡在外地刷不了").await?;
    wait_for_text(browser, "#live-results", "最符合的回答").await;
    // the answer first, the others as related questions
    wait_for(
        browser,
        "#live-results ul:first-of-type a[href='/faq/card-failure']",
    )
    .await;
    wait_for_text(browser, "#live-results", "相关问题").await;
    std::fs::write(shot("typing"), browser.screenshot().await?).unwrap();
    // the plain search: the results page
    browser
        .find(Locator::Css("#search-form button[type=submit]"))
        .await?
        .click()
        .await?;
    wait_for(browser, "#answer").await;
    no_horizontal_scroll(browser).await?;
    std::fs::write(shot("search"), full_page_png(browser).await?).unwrap();
    // open the entry, follow a related link
    browser
        .find(Locator::Css("#answer h3 a"))
        .await?
        .click()
        .await?;
    wait_for_text(browser, "h1", "刷卡不成功").await;
    no_horizontal_scroll(browser).await?;
    axe_found.push((
        format!("entry-{size}"),
        axe(browser, &format!("entry-{size}")).await?,
    ));
    std::fs::write(shot("entry"), full_page_png(browser).await?).unwrap();
    browser
        .find(Locator::Css(".related a[href='/faq/manual-materials']"))
        .await?
        .click()
        .await?;
    wait_for_text(browser, "h1", "零星报销要准备哪些材料").await;
    // feedback without any script of ours: a form post, back with thanks
    browser
        .find(Locator::Css("#helpful"))
        .await?
        .click()
        .await?;
    wait_for_text(browser, "#feedback-thanks", "谢谢您的反馈").await;
    std::fs::write(shot("feedback"), browser.screenshot().await?).unwrap();
    // a question nothing answers
    browser
        .goto(&site.url(&format!(
            "/faq?q={}",
            urlencode("张家港 我家的狗生病了去哪看")
        )))
        .await?;
    wait_for(browser, "#no-answer").await;
    wait_for_text(browser, "#no-answer", "0512-12333").await;
    axe_found.push((
        format!("no-answer-{size}"),
        axe(browser, &format!("no-answer-{size}")).await?,
    ));
    std::fs::write(shot("no-answer"), full_page_png(browser).await?).unwrap();
    // the checklist form
    browser.goto(&site.url("/tools/checklist")).await?;
    wait_for(browser, "#tool-form").await;
    axe_found.push((
        format!("checklist-form-{size}"),
        axe(browser, &format!("checklist-form-{size}")).await?,
    ));
    select(browser, "insured_region", "suzhou").await?;
    select(browser, "care_location", "other_province").await?;
    select(browser, "filing_type", "long_term_resident").await?;
    select(browser, "stage", "before_care").await?;
    select(browser, "visit", "inpatient").await?;
    select(browser, "by_proxy", "false").await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    wait_for_text(browser, "#result", "办理异地就医备案需要准备").await;
    no_horizontal_scroll(browser).await?;
    std::fs::write(shot("checklist"), full_page_png(browser).await?).unwrap();
    // the estimate form: a mistake first, then the estimate
    browser.goto(&site.url("/tools/estimate")).await?;
    wait_for(browser, "#tool-form").await;
    select(browser, "insured_region", "suzhou").await?;
    select(browser, "scheme", "employee").await?;
    select(browser, "employment", "retired").await?;
    select(browser, "visit", "inpatient").await?;
    select(browser, "hospital_level", "3").await?;
    select(browser, "filing_type", "long_term_resident").await?;
    select(browser, "filed", "true").await?;
    type_into(browser, "#f-total", "好几千").await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    wait_for(browser, "#f-total-error").await;
    axe_found.push((
        format!("estimate-error-{size}"),
        axe(browser, &format!("estimate-error-{size}")).await?,
    ));
    std::fs::write(shot("estimate-error"), full_page_png(browser).await?).unwrap();
    type_into(browser, "#f-total", "5万").await?;
    browser.find(Locator::Css("#submit")).await?.click().await?;
    wait_for_text(browser, "#result", "医保基金支付").await;
    no_horizontal_scroll(browser).await?;
    axe_found.push((
        format!("estimate-{size}"),
        axe(browser, &format!("estimate-{size}")).await?,
    ));
    std::fs::write(shot("estimate"), full_page_png(browser).await?).unwrap();
    // printed: the result only, no header, form or footer
    browser
        .issue_cmd(Cdp(
            "Emulation.setEmulatedMedia",
            json!({ "media": "print" }),
        ))
        .await?;
    let visible = browser
        .execute(
            "return ['#result', '#tool-form', '.site-header', '.site-footer'].map(s => \
               getComputedStyle(document.querySelector(s)).display !== 'none')",
            vec![],
        )
        .await?;
    assert_eq!(visible, json!([true, false, false, false]), "what prints");
    std::fs::write(shot("estimate-print"), full_page_png(browser).await?).unwrap();
    browser
        .issue_cmd(Cdp("Emulation.setEmulatedMedia", json!({ "media": "" })))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_resident_searches_reads_shares_and_uses_the_tools_in_a_real_browser() {
    let site = Site::start().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let mut found: Vec<(String, Vec<Value>)> = Vec::new();
    let result = async {
        browser.set_window_size(1440, 900).await?;
        visit(&site, &browser, "1440x900", &mut found).await?;
        browser
            .issue_cmd(Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
            ))
            .await?;
        visit(&site, &browser, "390x844", &mut found).await?;
        // 大字: larger text, kept across pages, and still no horizontal scrolling
        browser.goto(&site.url("/faq/card-failure")).await?;
        let before = font_size(&browser).await?;
        assert!(before >= 16.0, "base font {before}px");
        wait_for(&browser, "#big-toggle:not([hidden])")
            .await
            .click()
            .await?;
        browser.goto(&site.url("/faq/filing-materials")).await?;
        wait_for(&browser, "#big-toggle[aria-pressed='true']").await;
        let after = font_size(&browser).await?;
        assert!(after > before, "大字 {before} → {after}");
        no_horizontal_scroll(&browser).await?;
        std::fs::write(
            screenshots().join("site-entry-big-390x844.png"),
            full_page_png(&browser).await?,
        )
        .unwrap();
        // one click to the QR code of this page's address, on a page to print
        browser
            .find(Locator::Css("#qr-link"))
            .await?
            .click()
            .await?;
        wait_for(&browser, "#qr-image").await;
        let shown = browser
            .execute(
                "const i = document.getElementById('qr-image'); \
                 return i.complete && i.naturalWidth > 0;",
                vec![],
            )
            .await?;
        assert_eq!(shown, json!(true), "the QR code is drawn");
        wait_for_text(
            &browser,
            ".qr-url",
            &format!("http://{}/faq/filing-materials", site.addr),
        )
        .await;
        std::fs::write(
            screenshots().join("site-qr-390x844.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        browser
            .issue_cmd(Cdp("Emulation.clearDeviceMetricsOverride", json!({})))
            .await?;
        // the check itself sees a violation when there is one: an image without words
        browser
            .execute(
                "const i = document.createElement('img'); i.src = '/faq/card-failure/qr.svg'; \
                 document.querySelector('main').appendChild(i); return true;",
                vec![],
            )
            .await?;
        let planted = axe(&browser, "planted").await?;
        assert!(
            planted.iter().any(|v| v["id"] == "image-alt"),
            "axe-core reports an image without alt text: {planted:?}"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
    let serious: Vec<&(String, Vec<Value>)> = found.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(
        serious.is_empty(),
        "axe-core: serious or critical violations: {serious:#?}"
    );
}

/// The computed font size of the body text, in px.
async fn font_size(browser: &Client) -> Result<f64, fantoccini::error::CmdError> {
    let v = browser
        .execute(
            "return parseFloat(getComputedStyle(document.querySelector('.full p')).fontSize)",
            vec![],
        )
        .await?;
    Ok(v.as_f64().unwrap_or_default())
}
