//! `yidi serve` (part of the binary, not the library): reads the typed [`Config`], loads the
//! assistant, opens the store and runs the channels on one shared core until SIGINT/SIGTERM:
//! the HTTP API with the agent console, the Telegram bot when a token is configured, and the
//! WeChat Official Account endpoint (on the HTTP server) when `wechat.token` is set.
//!
//! Reload: on SIGHUP (and `POST /v1/agent/reload`) the knowledge, dialogs and regions folders
//! are loaded and validated again and put in force, or refused with every problem logged
//! while the previous data keeps serving ([`yidi::live`]).
//!
//! Shutdown: on the signal every channel stops taking new work and finishes what it has
//! (HTTP requests in flight, Telegram updates being handled), then the store closes. If that
//! takes longer than `shutdown_grace_secs`, the process gives up and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use tokio::sync::watch;
use yidi::assistant::Assistant;
use yidi::channels::console::AgentAuth;
use yidi::channels::http;
use yidi::channels::telegram::{self, TelegramSettings, Url, WebhookSettings};
use yidi::channels::wechat::{WeChat, WeChatSettings};
use yidi::config::Config;
use yidi::conversation::Conversations;
use yidi::live::LiveAssistant;
use yidi::store::{Store, StoreError, StoreOptions};

/// The command-line flags of `yidi serve`, the last layer of the configuration.
pub struct ServeFlags {
    pub config: Option<PathBuf>,
    pub addr: Option<String>,
    pub database_url: Option<String>,
    pub telegram_webhook: bool,
    pub print_config: bool,
    pub knowledge: Option<PathBuf>,
    pub dialogs: Option<PathBuf>,
}

/// The configuration: the layers of [`Config::figment`] with the flags on top.
fn config(flags: &ServeFlags) -> Result<Config, yidi::config::ConfigError> {
    let mut figment: Figment = Config::figment(flags.config.as_deref())?;
    if let Some(addr) = &flags.addr {
        figment = figment.merge(("addr", addr));
    }
    if let Some(url) = &flags.database_url {
        figment = figment.merge(("database_url", url));
    }
    if let Some(dir) = &flags.knowledge {
        figment = figment.merge(("knowledge", dir));
    }
    if let Some(dir) = &flags.dialogs {
        figment = figment.merge(("dialogs", dir));
    }
    if flags.telegram_webhook {
        figment = figment.merge(("telegram.webhook", true));
    }
    Config::from_figment(&figment)
}

pub fn run(flags: ServeFlags) -> anyhow::Result<ExitCode> {
    let config = match config(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yidi serve: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if flags.print_config {
        // TOML, as a config file is written; a closed pipe (`| head`) is not an error
        use std::io::Write;
        let text = config.redacted_toml();
        return Ok(match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("yidi serve: cannot print the configuration: {e}");
                ExitCode::from(1)
            }
        });
    }
    let knowledge_dir = config
        .knowledge
        .clone()
        .unwrap_or_else(yidi::default_knowledge_dir);
    let dialogs_dir = config
        .dialogs
        .clone()
        .unwrap_or_else(yidi::default_dialogs_dir);
    for (what, key, dir) in [
        ("knowledge", "--knowledge", &knowledge_dir),
        ("dialogs", "--dialogs", &dialogs_dir),
    ] {
        if !dir.is_dir() {
            eprintln!(
                "yidi serve: the {what} folder {} does not exist (give another with {key} DIR \
                 or the configuration's `{what}` key)",
                dir.display()
            );
            return Ok(ExitCode::from(2));
        }
    }
    let assistant = match Assistant::load(&knowledge_dir, &dialogs_dir) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "yidi serve: invalid data:\n{}",
                crate::describe_load_error(&e)
            );
            return Ok(ExitCode::from(1));
        }
    };
    // Config::validate has checked the digests and URLs; these conversions name the key
    // all the same rather than trust that
    let settings = AgentAuth::from_sha256_hex(&config.agent_token_sha256)
        .map_err(|e| format!("agent_token_sha256: {e}"))
        .and_then(|agents| {
            Ok((
                agents,
                telegram_settings(&config)?,
                wechat_settings(&config)?,
            ))
        });
    let (agents, telegram, wechat) = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("yidi serve: invalid configuration: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let assistant = Arc::new(assistant);
    yidi::live::warm_in_background(&assistant);
    let live = LiveAssistant::from_folders(assistant, knowledge_dir, dialogs_dir);
    runtime.block_on(serve(config, agents, telegram, wechat, live))
}

/// How the configuration opens the store.
fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        timeout: Duration::from_secs(config.database_timeout_secs),
        sqlite_synchronous: config.sqlite_synchronous,
    }
}

/// `yidi purge`: deletes at once what the server would delete by its retention.
pub fn purge(
    file: Option<PathBuf>,
    database_url: Option<String>,
    days: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let config = Config::figment(file.as_deref()).and_then(|mut figment| {
        if let Some(url) = &database_url {
            figment = figment.merge(("database_url", url));
        }
        if let Some(days) = days {
            figment = figment.merge(("retention_days", days));
        }
        Config::from_figment(&figment)
    });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yidi purge: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if config.retention_days == 0 {
        eprintln!("yidi purge: retention_days is 0 (keep everything); give --days N to purge");
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = match Store::connect_with(&config.database_url, store_options(&config)).await {
            Ok(s) => s,
            Err(e @ StoreError::Url(_)) => {
                eprintln!("yidi purge: {e}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                let url = yidi::config::redact_url(&config.database_url);
                return Err(e).with_context(|| format!("opening the database {url}"));
            }
        };
        let purged = store
            .purge_older_than_days(config.retention_days)
            .await
            .context("purging")?;
        println!(
            "deleted what was older than {} days: {purged}",
            config.retention_days
        );
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The bot's settings when a token is configured; a malformed URL names its key.
fn telegram_settings(config: &Config) -> Result<Option<TelegramSettings>, String> {
    let t = &config.telegram;
    let Some(token) = &t.token else {
        return Ok(None);
    };
    let url = |key: &str, value: &str| {
        Url::parse(value).map_err(|e| format!("telegram.{key}: not a URL ({e})"))
    };
    let api_url = t
        .api_url
        .as_deref()
        .map(|u| url("api_url", u))
        .transpose()?;
    let webhook = match (t.webhook, &t.webhook_url, t.webhook_listen) {
        (false, ..) => None,
        (true, Some(public_url), Some(listen)) => Some(WebhookSettings {
            public_url: url("webhook_url", public_url)?,
            listen,
            // teloxide makes a random secret and checks it on every update
            secret_token: None,
        }),
        // Config::validate has already refused a webhook without its URL or address
        (true, ..) => return Err("telegram.webhook needs webhook_url and webhook_listen".into()),
    };
    Ok(Some(TelegramSettings {
        token: token.clone(),
        api_url,
        webhook,
    }))
}

/// `yidi wechat-menu`: prints the menu, or creates it with the configured app id and secret
/// (exit 0 when WeChat accepted it, 1 when it refused, 2 for a configuration without them).
pub fn wechat_menu(file: Option<PathBuf>, post: bool) -> anyhow::Result<ExitCode> {
    let menu = yidi::channels::wechat::menu();
    if !post {
        println!("{}", serde_json::to_string_pretty(&menu)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = match Config::figment(file.as_deref()).and_then(|f| Config::from_figment(&f)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yidi wechat-menu: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let w = &config.wechat;
    let (Some(app_id), Some(app_secret)) = (&w.app_id, &w.app_secret) else {
        eprintln!("yidi wechat-menu: --post needs wechat.app_id and wechat.app_secret");
        return Ok(ExitCode::from(2));
    };
    let api_url = match Url::parse(&w.api_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("yidi wechat-menu: wechat.api_url: not a URL ({e})");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let api = yidi::channels::wechat::api::Api::new(api_url, app_id, app_secret)?;
    match runtime.block_on(api.create_menu(&menu)) {
        Ok(()) => {
            println!("the menu was created");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("yidi wechat-menu: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The WeChat endpoint's settings when a token is configured; keys name themselves.
fn wechat_settings(config: &Config) -> Result<Option<WeChatSettings>, String> {
    let w = &config.wechat;
    let Some(token) = &w.token else {
        return Ok(None);
    };
    // Config::validate requires the app id and secret with a token
    let (Some(app_id), Some(app_secret)) = (&w.app_id, &w.app_secret) else {
        return Err("wechat.token needs wechat.app_id and wechat.app_secret".into());
    };
    let api_url = Url::parse(&w.api_url).map_err(|e| format!("wechat.api_url: not a URL ({e})"))?;
    Ok(Some(WeChatSettings {
        token: token.clone(),
        app_id: app_id.clone(),
        app_secret: app_secret.clone(),
        encoding_aes_key: w.encoding_aes_key.clone(),
        api_url,
        path: w.path.clone(),
        reply_deadline: Duration::from_millis(w.reply_deadline_ms),
        request_timeout: Duration::from_secs(config.http.request_timeout_secs),
    }))
}

async fn serve(
    config: Config,
    agents: AgentAuth,
    telegram: Option<TelegramSettings>,
    wechat: Option<WeChatSettings>,
    live: LiveAssistant,
) -> anyhow::Result<ExitCode> {
    let store = match Store::connect_with(&config.database_url, store_options(&config)).await {
        Ok(store) => store,
        Err(e @ (StoreError::Url(_) | StoreError::MissingFolder(_))) => {
            eprintln!("yidi serve: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            // the URL may carry a password: masked
            let url = yidi::config::redact_url(&config.database_url);
            eprintln!("yidi serve: cannot open the database {url}: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if !agents.is_configured() {
        tracing::warn!("no agent_token_sha256 configured: the console refuses every login");
    }
    let live = Arc::new(live);
    let conversations =
        Conversations::live(live.clone(), store.clone()).with_limits(&config.limits);

    // SIGHUP: reload the data (the HTTP endpoint does the same for agents)
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        let live = live.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            yidi::channels::reload::reload_and_log(&live, "SIGHUP")
                        })
                        .await;
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload only through POST /v1/agent/reload")
            }
        }
    }
    #[cfg(not(unix))]
    drop(live);

    // one shutdown signal for every channel
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    // forget idle rate-limit buckets now and then, so memory follows the active users
    let limits = conversations.limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.retain_recent();
        }
    });

    // retention: what residents typed is deleted `retention_days` after its last activity
    if config.retention_days > 0 {
        let store = store.clone();
        let days = config.retention_days;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match store.purge_older_than_days(days).await {
                    Ok(purged) => tracing::info!(days, %purged, "retention: deleted"),
                    Err(e) => {
                        tracing::warn!(error = %e, "retention: purge failed, retried in an hour")
                    }
                }
            }
        });
    }

    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "yidi serve: cannot listen on {}: {e} (another program may use the port: \
                 choose another with --addr)",
                config.addr
            );
            return Ok(ExitCode::from(1));
        }
    };
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "serving the HTTP API and the agent console");
    eprintln!("yidi: listening on http://{local}");
    eprintln!("yidi: agent console on http://{local}/console, API document on http://{local}/docs");
    let metrics_token = match &config.metrics.token_sha256 {
        // Config::validate has checked the digest
        Some(d) => {
            Some(AgentAuth::from_sha256_hex(std::slice::from_ref(d)).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let state = http::AppState::from_conversations(conversations.clone())
        .with_agents(agents)
        .with_http(config.http.clone())
        .with_metrics_access(metrics_token, config.metrics.listen.is_some());
    let state = if config.metrics.open {
        state.with_open_metrics()
    } else {
        state
    };
    if let Some(addr) = config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} (metrics.listen)"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        let app = http::metrics_app(state.clone());
        let http_config = config.http.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = http::serve_router(listener, app, http_config, stop).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let mut router = http::app(state);
    // the WeChat endpoint is a route of the same server
    let wechat = match wechat {
        None => None,
        Some(settings) => {
            let path = settings.path.clone();
            let channel = WeChat::new(settings, conversations.clone())
                .context("starting the WeChat channel")?;
            let mode = if channel.safe_mode() {
                "safe mode"
            } else {
                "plaintext mode"
            };
            tracing::info!(path, mode, "serving the WeChat Official Account endpoint");
            eprintln!("yidi: WeChat endpoint on {path} ({mode})");
            router = router.merge(channel.router());
            Some(channel)
        }
    };
    let http_server = http::serve_router(
        listener,
        router,
        config.http.clone(),
        stopped(stop_rx.clone()),
    );

    // The bot runs beside the HTTP server on the same core. If it cannot run (a refused
    // token, Telegram unreachable at start) the error is logged and the HTTP API and the
    // console keep serving: one channel's outage does not take the others down.
    let bot = telegram.map(|settings| {
        let mode = if settings.webhook.is_some() {
            "webhook"
        } else {
            "long polling"
        };
        tracing::info!(mode, "starting the Telegram bot");
        eprintln!("yidi: Telegram bot starting ({mode})");
        let conversations = conversations.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            let result = telegram::run(settings, conversations, stop).await;
            if let Err(e) = &result {
                tracing::error!(error = %format!("{e:#}"), "the Telegram bot stopped");
                eprintln!("yidi: the Telegram bot stopped: {e:#}");
            }
            result
        })
    });

    let channels = async {
        http_server.await.context("serving HTTP")?;
        if let Some(wechat) = &wechat {
            // replies still being made or sent by customer-service message
            wechat.shutdown().await;
        }
        if let Some(bot) = bot {
            // its error, if any, was logged when it happened
            let _ = bot.await;
        }
        anyhow::Ok(())
    };
    tokio::pin!(channels);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let give_up = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = &mut channels => r?,
        () = give_up => {
            tracing::error!(secs = grace.as_secs(), "work in flight did not finish in time; exiting");
            eprintln!("yidi: shutdown took longer than {} s; exiting", grace.as_secs());
            return Ok(ExitCode::from(1));
        }
    }
    store.close().await;
    tracing::info!("shut down");
    Ok(ExitCode::SUCCESS)
}

/// Completes once the shutdown signal has been sent.
async fn stopped(mut rx: watch::Receiver<bool>) {
    // an error means the sender is gone, which also means stop
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received, finishing work in flight");
}
