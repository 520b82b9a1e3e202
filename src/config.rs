//! The typed configuration of `yidi serve`, merged by [figment] from, in rising priority:
//!
//! 1. the defaults below (127.0.0.1:8080, the SQLite file `yidi.db`, no agents, no bot);
//! 2. a TOML file: `--config FILE` / `YIDI_CONFIG`, else `./yidi.toml` when it exists
//!    (`yidi.example.toml` documents every key);
//! 3. environment variables `YIDI_…`, nested keys joined by `__`
//!    (`YIDI_LIMITS__PER_IP_PER_MINUTE=300`), plus the conventional `DATABASE_URL`,
//!    `TELOXIDE_TOKEN` and `TELOXIDE_API_URL`;
//! 4. command-line flags.
//!
//! Unknown keys are errors (a misspelt key must not be silently ignored), and
//! [`Config::validate`] checks what serde cannot (zero limits, malformed digests, a webhook
//! without its public URL) so that a bad configuration stops the server at start with a
//! message naming the key.
//!
//! This module sits at the bottom of the crate: it imports no other module of it. The
//! formats of configured secrets (SHA-256 digests of tokens, WeChat's EncodingAESKey) are
//! parsed here ([`parse_sha256_hex_list`], [`decode_encoding_aes_key`]), and the channels
//! that use them call these.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The config file read when none is named and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "yidi.toml";

/// The database when none is configured: the SQLite file `yidi.db`, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://yidi.db";

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API and the agent console listen: an IP address and a port, or a host
    /// name and a port (`localhost:8080`, resolved at start).
    #[serde(deserialize_with = "socket_addr")]
    pub addr: SocketAddr,
    /// `sqlite://FILE` (created if missing) or `postgres://…` (for several replicas).
    pub database_url: String,
    /// The knowledge folder (default: `./knowledge`, else the one in the source tree).
    pub knowledge: Option<PathBuf>,
    /// The dialogs folder (default: `./dialogs`, else the one in the source tree).
    pub dialogs: Option<PathBuf>,
    /// SHA-256 digests (64 hex digits) of the agent tokens that may log in to the console;
    /// `yidi agent-token` makes a token and its digest. The tokens themselves are never
    /// configured or stored.
    pub agent_token_sha256: Vec<String>,
    pub limits: Limits,
    pub telegram: Telegram,
    pub wechat: WeChat,
    /// How long a shutdown waits for turns in flight before giving up (seconds).
    pub shutdown_grace_secs: u64,
    /// Connection time limits and cap of the HTTP server.
    pub http: Http,
    /// Longest a database statement may run before it is abandoned (seconds): a stalled
    /// database then answers 503 quickly and `/readyz` turns red.
    pub database_timeout_secs: u64,
    /// When a SQLite database syncs a commit to disk: `normal` (default; a commit survives
    /// the process being killed, a power cut may lose the last ones) or `full` (every
    /// commit synced: one fsync per commit, which the turns written together share). SQLite
    /// runs in WAL mode either way; PostgreSQL
    /// ignores it.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsAccess,
    /// Days that conversations (state, transcript), unanswered questions and feedback are
    /// kept after their last activity; the server deletes older ones every hour, and
    /// `yidi purge` does it at once. 0 keeps them forever.
    pub retention_days: u32,
}

/// Time limits and the connection cap of the HTTP server (`[http]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Seconds a connection may take to send a request's complete headers, counted from its
    /// opening or the end of the previous response: a slow sender is disconnected, and so is
    /// a keep-alive connection idle this long (one timer in hyper serves both).
    pub header_timeout_secs: u64,
    /// Seconds a request may take in all (its body, the turn, the answer): then 503.
    pub request_timeout_secs: u64,
    /// Seconds a request's body may take to arrive after its headers, plus one second for
    /// every `body_min_bytes_per_sec` bytes received (a floor on the sending rate, as
    /// Apache's mod_reqtimeout has): a body trickled slower is answered 408 and its
    /// connection closed.
    pub body_timeout_secs: u64,
    /// The slowest sending rate a body may keep up beyond `body_timeout_secs` (bytes per
    /// second).
    pub body_min_bytes_per_sec: u64,
    /// Most connections open at once. At the cap the slowest connection not being answered
    /// (idle, or still sending its request) is closed to make room; when every one is being
    /// answered, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Connections kept beyond `max_connections` for health checks: when the cap is full of
    /// connections being answered, up to this many more are accepted, and they serve only
    /// `/healthz` and `/readyz` (anything else gets 503 with `Retry-After`).
    pub probe_connections: usize,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            body_timeout_secs: 5,
            body_min_bytes_per_sec: 500,
            max_connections: 512,
            probe_connections: 8,
        }
    }
}

/// Access to `/metrics` (`[metrics]`). By default nobody reads it: it needs a token
/// (`token_sha256`), its own address (`listen`, e.g. on a private network), or `open = true`
/// to serve it on `addr` to anyone who can reach it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsAccess {
    /// Serve `/metrics` on this address only, not on `addr`.
    #[serde(deserialize_with = "optional_socket_addr")]
    pub listen: Option<SocketAddr>,
    /// SHA-256 digest (64 hex digits) of a bearer token that `/metrics` then requires
    /// (`yidi agent-token` makes a token and its digest).
    pub token_sha256: Option<String>,
    /// Serve `/metrics` without a token on `addr` (only where the address is private).
    pub open: bool,
}

/// Per-user limits of the public API and the bot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute from one client IP to the public API (agents are exempt).
    pub per_ip_per_minute: u32,
    /// Requests one IP may make at once before the per-minute rate applies.
    pub per_ip_burst: u32,
    /// Messages per minute in one conversation (an HTTP session or a Telegram chat).
    pub per_session_per_minute: u32,
    /// Messages one conversation may send at once before the per-minute rate applies.
    pub per_session_burst: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry (only behind a proxy that
    /// sets it; otherwise clients could pick their own IP).
    pub trust_forwarded_for: bool,
}

/// The Telegram bot; it runs only when `token` is set (`TELOXIDE_TOKEN`).
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Telegram {
    pub token: Option<String>,
    /// The Bot API server (default: Telegram's; tests point it at a fake one).
    pub api_url: Option<String>,
    /// Receive updates by webhook instead of long polling.
    pub webhook: bool,
    /// The public URL Telegram posts updates to (required with `webhook`; Telegram itself
    /// accepts only HTTPS, a test server may use HTTP).
    pub webhook_url: Option<String>,
    /// Where the webhook listener binds (required with `webhook`).
    #[serde(deserialize_with = "optional_socket_addr")]
    pub webhook_listen: Option<SocketAddr>,
}

/// The WeChat Official Account (公众号) endpoint; it runs only when `token` is set.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeChat {
    /// The Token of the account's server configuration (3–32 letters and digits).
    pub token: Option<String>,
    /// The account's AppID (required with a token: safe mode checks it, and the
    /// customer-service API needs it).
    pub app_id: Option<String>,
    /// The account's AppSecret (required with a token, for the access token).
    pub app_secret: Option<String>,
    /// The EncodingAESKey (43 characters) for safe mode; without it, plaintext mode.
    pub encoding_aes_key: Option<String>,
    /// WeChat's API server (tests point it at a fake one).
    pub api_url: String,
    /// The route WeChat posts to; the server configuration's URL is this path on `addr`
    /// (behind an HTTPS proxy).
    pub path: String,
    /// How long a message waits for its reply before the request is answered `success` and
    /// the reply goes by customer-service message (milliseconds, at most 4500: WeChat waits
    /// 5 s; 0 always uses the customer-service API).
    pub reply_deadline_ms: u64,
}

impl Default for WeChat {
    fn default() -> WeChat {
        WeChat {
            token: None,
            app_id: None,
            app_secret: None,
            encoding_aes_key: None,
            api_url: "https://api.weixin.qq.com/".into(),
            path: "/wechat".into(),
            reply_deadline_ms: 3000,
        }
    }
}

impl std::fmt::Debug for WeChat {
    // the token, the secret and the key are secrets
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("WeChat")
            .field("token", &redacted(&self.token))
            .field("app_id", &self.app_id)
            .field("app_secret", &redacted(&self.app_secret))
            .field("encoding_aes_key", &redacted(&self.encoding_aes_key))
            .field("api_url", &self.api_url)
            .field("path", &self.path)
            .field("reply_deadline_ms", &self.reply_deadline_ms)
            .finish()
    }
}

/// Routes of the HTTP API that the WeChat path must not shadow.
const RESERVED_PATHS: [&str; 5] = ["/v1", "/console", "/metrics", "/healthz", "/readyz"];

impl WeChat {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if !is_http_url(&self.api_url) {
            return invalid("wechat.api_url", "must be an http:// or https:// URL");
        }
        let p = &self.path;
        let segments_ok = p.len() > 1
            && p.starts_with('/')
            && !p.ends_with('/')
            && p[1..].split('/').all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !segments_ok {
            return invalid(
                "wechat.path",
                "must be a path like /wechat (letters, digits, - _ . between slashes)",
            );
        }
        if RESERVED_PATHS
            .iter()
            .any(|r| p == r || p.starts_with(&format!("{r}/")))
        {
            return invalid("wechat.path", "is a route of the HTTP API");
        }
        if self.reply_deadline_ms > 4500 {
            return invalid(
                "wechat.reply_deadline_ms",
                "must be at most 4500 (WeChat waits 5 seconds for an answer)",
            );
        }
        if let Some(key) = &self.encoding_aes_key
            && decode_encoding_aes_key(key).is_none()
        {
            return invalid(
                "wechat.encoding_aes_key",
                "must be the 43-character EncodingAESKey of the account's server configuration",
            );
        }
        let Some(token) = &self.token else {
            return Ok(());
        };
        if !(3..=32).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return invalid(
                "wechat.token",
                "must be 3 to 32 letters and digits, as WeChat requires",
            );
        }
        match &self.app_id {
            None => return invalid("wechat.app_id", "is required with wechat.token"),
            Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return invalid(
                    "wechat.app_id",
                    "must be the account's AppID (letters and digits)",
                );
            }
            Some(_) => {}
        }
        if self
            .app_secret
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
        {
            return invalid("wechat.app_secret", "is required with wechat.token");
        }
        Ok(())
    }
}

impl std::fmt::Debug for Telegram {
    // the token is a secret: never in logs or error messages
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .field("webhook", &self.webhook)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_listen", &self.webhook_listen)
            .finish()
    }
}

/// An address to listen on: `IP:PORT` (`127.0.0.1:8080`, `[::1]:8080`), or `HOST:PORT`
/// with a host name that resolves (`localhost:8080`: its first IPv4 address, else its first).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let hint = "use an address and a port, e.g. 127.0.0.1:8080 (or 0.0.0.0:8080 for every \
                interface)";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` has no port: {hint}"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("`{port}` is not a port number (0–65535): {hint}"));
    };
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| format!("the host name `{host}` has no address: {hint}"))
        }
        Err(_) => Err(format!("cannot resolve the host name `{host}`: {hint}")),
    }
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_listen_addr(&text).map_err(serde::de::Error::custom)
}

fn optional_socket_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_listen_addr(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// The database URL without its password (`postgres://user:***@host/db`).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// When SQLite makes a commit durable (`sqlite_synchronous`): the database is always in WAL
/// mode, where `normal` (the default) writes each commit to the WAL file before the turn is
/// acknowledged and syncs it to disk at checkpoints. A committed turn then survives the
/// process being killed; a power cut or an OS crash may lose the last commits since the last
/// checkpoint (the database itself stays consistent). `full` syncs the WAL on every commit:
/// nothing acknowledged is lost even then, at the cost of one fsync per commit (the turns
/// that the writer writes together share one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    #[default]
    #[serde(alias = "NORMAL", alias = "Normal")]
    Normal,
    #[serde(alias = "FULL", alias = "Full")]
    Full,
}

impl std::fmt::Debug for Config {
    // secrets stay out of logs and `--print-config`: the database password is masked and the
    // bot token redacted (see [`Telegram`])
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("knowledge", &self.knowledge)
            .field("dialogs", &self.dialogs)
            .field("agent_token_sha256", &self.agent_token_sha256)
            .field("limits", &self.limits)
            .field("telegram", &self.telegram)
            .field("wechat", &self.wechat)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("http", &self.http)
            .field("database_timeout_secs", &self.database_timeout_secs)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("metrics", &self.metrics)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

/// The top-level keys, the only ones read from `YIDI_…` variables (so that an unrelated
/// `YIDI_SOMETHING` in the environment does not stop the server).
const KEYS: &[&str] = &[
    "addr",
    "database_url",
    "knowledge",
    "dialogs",
    "agent_token_sha256",
    "limits",
    "telegram",
    "wechat",
    "shutdown_grace_secs",
    "http",
    "database_timeout_secs",
    "sqlite_synchronous",
    "metrics",
    "retention_days",
];

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_string(),
            knowledge: None,
            dialogs: None,
            agent_token_sha256: Vec::new(),
            limits: Limits::default(),
            telegram: Telegram::default(),
            wechat: WeChat::default(),
            shutdown_grace_secs: 20,
            http: Http::default(),
            database_timeout_secs: 5,
            sqlite_synchronous: SqliteSynchronous::Normal,
            metrics: MetricsAccess::default(),
            retention_days: 90,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        // A person asking questions sends a few messages a minute; an agent console is exempt.
        // These stop a script hammering the API without getting in a caller's way.
        Limits {
            per_ip_per_minute: 120,
            per_ip_burst: 30,
            per_session_per_minute: 20,
            per_session_burst: 8,
            trust_forwarded_for: false,
        }
    }
}

/// A configuration that cannot be used, naming where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", describe_figment(.0))]
    Figment(Box<figment::Error>),
    #[error("the config file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Every error of a figment error, one a line, each naming the key (without figment's profile
/// prefix), where it came from and, for an unknown key, the known key it most resembles.
fn describe_figment(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = match (&e.metadata, &e.profile) {
                (Some(md), _) if md.source.is_some() => {
                    format!(
                        " in {}",
                        md.source
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )
                }
                // a command-line flag, merged as a (key, value) pair
                (Some(md), _) if md.name.starts_with('(') => " (command line)".to_string(),
                (Some(md), Some(profile)) if !e.path.is_empty() => {
                    format!(" ({} {})", md.name, md.interpolate(profile, &e.path))
                }
                (Some(md), _) => format!(" ({})", md.name),
                _ => String::new(),
            };
            match &e.kind {
                figment::error::Kind::UnknownField(field, known) => {
                    let hint = match closest(field, known) {
                        Some(c) => format!(": did you mean `{c}`?"),
                        None => format!(": the keys here are {}", known.join(", ")),
                    };
                    format!("unknown key `{key}`{origin}{hint}")
                }
                kind => format!("key `{key}`{origin}: {kind}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The known key closest to `word` (by edit distance, at most a third of its length).
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&word, k), *k))
        .filter(|(d, _)| *d <= (word.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> ConfigError {
        ConfigError::Figment(Box::new(e))
    }
}

impl Config {
    /// The layered figment: defaults, the file (an explicitly named one must exist), the
    /// environment. Callers merge their flags on top, then [`Config::from_figment`].
    pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.is_file() => return Err(ConfigError::MissingFile(f.to_path_buf())),
            Some(f) => figment = figment.merge(Toml::file_exact(f)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        Ok(figment
            .merge(Env::prefixed("YIDI_").split("__").filter(|key| {
                let top = key.as_str().split('.').next().unwrap_or("");
                KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
            }))
            .merge(Env::raw().only(&["database_url"]))
            .merge(
                Env::raw()
                    .only(&["teloxide_token", "teloxide_api_url"])
                    .map(|k| {
                        if k == "teloxide_token" {
                            "telegram.token".into()
                        } else {
                            "telegram.api_url".into()
                        }
                    }),
            ))
    }

    /// The configuration as TOML (what a config file would say), secrets redacted: the
    /// database password, the bot's token, WeChat's token, secret and key
    /// (`yidi serve --print-config`).
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        c.database_url = redact_url(&c.database_url);
        for secret in [
            &mut c.telegram.token,
            &mut c.wechat.token,
            &mut c.wechat.app_secret,
            &mut c.wechat.encoding_aes_key,
        ] {
            if secret.is_some() {
                *secret = Some("<redacted>".into());
            }
        }
        toml::to_string_pretty(&c)
            .unwrap_or_else(|e| format!("# the configuration cannot be shown as TOML: {e}\n"))
    }

    /// Extracts and validates a configuration.
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot say.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.database_url.trim().is_empty() {
            return invalid("database_url", "must not be empty");
        }
        if let Err(e) = parse_sha256_hex_list(&self.agent_token_sha256) {
            return Err(ConfigError::Invalid {
                key: "agent_token_sha256",
                message: format!("{e}; `yidi agent-token` prints a token and its digest"),
            });
        }
        if self.shutdown_grace_secs == 0 {
            return invalid("shutdown_grace_secs", "must be at least 1");
        }
        let h = &self.http;
        for (key, value) in [
            ("http.header_timeout_secs", h.header_timeout_secs),
            ("http.request_timeout_secs", h.request_timeout_secs),
            ("http.body_timeout_secs", h.body_timeout_secs),
            ("http.body_min_bytes_per_sec", h.body_min_bytes_per_sec),
            ("http.max_connections", h.max_connections as u64),
            ("database_timeout_secs", self.database_timeout_secs),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if let Some(d) = &self.metrics.token_sha256
            && let Err(e) = parse_sha256_hex_list(std::slice::from_ref(d))
        {
            return Err(ConfigError::Invalid {
                key: "metrics.token_sha256",
                message: format!("{e}; `yidi agent-token` prints a token and its digest"),
            });
        }
        if self.metrics.listen.is_some_and(|l| l == self.addr) {
            return invalid("metrics.listen", "must differ from addr");
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.per_ip_per_minute", l.per_ip_per_minute),
            ("limits.per_ip_burst", l.per_ip_burst),
            ("limits.per_session_per_minute", l.per_session_per_minute),
            ("limits.per_session_burst", l.per_session_burst),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        self.wechat.validate()?;
        let t = &self.telegram;
        if t.token.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return invalid("telegram.token", "is set but empty");
        }
        if let Some(url) = &t.api_url
            && !is_http_url(url)
        {
            return invalid("telegram.api_url", "must be an http:// or https:// URL");
        }
        if t.webhook {
            match &t.webhook_url {
                None => return invalid("telegram.webhook_url", "is required with webhook = true"),
                Some(u) if !is_http_url(u) => {
                    return invalid("telegram.webhook_url", "must be an http(s) URL");
                }
                Some(_) => {}
            }
            if t.webhook_listen.is_none() {
                return invalid("telegram.webhook_listen", "is required with webhook = true");
            }
        }
        Ok(())
    }
}

/// Configured token digests: each the SHA-256 of a token as 64 hexadecimal digits (either
/// case; surrounding whitespace ignored). The error names the digest (1-based) and what is
/// wrong with it.
pub fn parse_sha256_hex_list(digests: &[String]) -> Result<Vec<[u8; 32]>, String> {
    digests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            parse_sha256_hex(d.trim()).map_err(|e| format!("agent token digest #{}: {e}", i + 1))
        })
        .collect()
}

/// One SHA-256 digest as 64 hexadecimal digits.
pub fn parse_sha256_hex(s: &str) -> Result<[u8; 32], String> {
    let n = s.chars().count();
    if n != 64 {
        return Err(format!(
            "expected the SHA-256 of the token as 64 hexadecimal digits, got {n} characters"
        ));
    }
    if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "character {} ({c:?}) is not a hexadecimal digit (expected 64 of 0-9, a-f)",
            i + 1
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).expect("ASCII hex digits");
        out[i] = u8::from_str_radix(pair, 16).expect("checked hex digits");
    }
    Ok(out)
}

/// The length of WeChat's EncodingAESKey.
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// The 32-byte AES key of a 43-character EncodingAESKey (WeChat's safe mode), or `None` when
/// it is not one.
pub fn decode_encoding_aes_key(encoding_aes_key: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    if encoding_aes_key.len() != ENCODING_AES_KEY_LEN {
        return None;
    }
    // WeChat's keys do not always have zero trailing bits: decode leniently
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = engine.decode(format!("{encoding_aes_key}=")).ok()?;
    bytes.try_into().ok()
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(file: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_figment(&Config::figment(file.map(Path::new))?)
    }

    #[test]
    fn defaults_without_file_or_environment() {
        Jail::expect_with(|_jail| {
            let c = load(None).unwrap();
            assert_eq!(c, Config::default());
            assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
            assert_eq!(c.database_url, "sqlite://yidi.db");
            assert!(c.telegram.token.is_none());
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_override() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "yidi.toml",
                r#"
                addr = "0.0.0.0:9000"
                database_url = "sqlite://from-file.db"
                [limits]
                per_ip_per_minute = 10
                "#,
            )?;
            jail.set_env("YIDI_LIMITS__PER_SESSION_BURST", "3");
            jail.set_env("DATABASE_URL", "postgres://u@h/db");
            jail.set_env("TELOXIDE_TOKEN", "123:abc");
            jail.set_env("TELOXIDE_API_URL", "http://127.0.0.1:9/");
            let c = load(None).unwrap();
            assert_eq!(c.addr.to_string(), "0.0.0.0:9000");
            assert_eq!(c.database_url, "postgres://u@h/db");
            assert_eq!(c.limits.per_ip_per_minute, 10);
            assert_eq!(c.limits.per_session_burst, 3);
            assert_eq!(c.limits.per_ip_burst, Limits::default().per_ip_burst);
            assert_eq!(c.telegram.token.as_deref(), Some("123:abc"));
            assert_eq!(c.telegram.api_url.as_deref(), Some("http://127.0.0.1:9/"));
            Ok(())
        });
    }

    #[test]
    fn sqlite_synchronous_is_normal_unless_full_is_chosen() {
        Jail::expect_with(|jail| {
            assert_eq!(
                load(None).unwrap().sqlite_synchronous,
                SqliteSynchronous::Normal
            );
            jail.create_file("yidi.toml", "sqlite_synchronous = \"full\"")?;
            assert_eq!(
                load(None).unwrap().sqlite_synchronous,
                SqliteSynchronous::Full
            );
            jail.set_env("YIDI_SQLITE_SYNCHRONOUS", "NORMAL");
            assert_eq!(
                load(None).unwrap().sqlite_synchronous,
                SqliteSynchronous::Normal
            );
            // anything else names the key
            jail.set_env("YIDI_SQLITE_SYNCHRONOUS", "off");
            let e = load(None).unwrap_err().to_string();
            assert!(e.to_lowercase().contains("sqlite_synchronous"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_named_with_the_key_it_resembles() {
        Jail::expect_with(|jail| {
            jail.create_file("yidi.toml", "adr = \"127.0.0.1:1\"\n")?;
            let e = load(None).unwrap_err().to_string();
            assert!(
                e.starts_with("unknown key `adr` in ") && e.ends_with("did you mean `addr`?"),
                "{e}"
            );
            assert!(!e.contains("default."), "{e}");
            jail.create_file("yidi.toml", "[limits]\nper_ip_per_minit = 3\n")?;
            let e = load(None).unwrap_err().to_string();
            assert!(
                e.contains("unknown key `limits.per_ip_per_minit`")
                    && e.contains("did you mean `per_ip_per_minute`?"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn addresses_may_name_a_host() {
        assert_eq!(parse_listen_addr("localhost:8080").unwrap().port(), 8080);
        assert!(
            parse_listen_addr("localhost:8080")
                .unwrap()
                .ip()
                .is_loopback()
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        let e = parse_listen_addr("localhost").unwrap_err();
        assert!(e.contains("127.0.0.1:8080"), "{e}");
        let e = parse_listen_addr("localhost:http").unwrap_err();
        assert!(e.contains("port"), "{e}");
        Jail::expect_with(|jail| {
            jail.set_env("YIDI_ADDR", "localhost:8181");
            assert_eq!(load(None).unwrap().addr.port(), 8181);
            Ok(())
        });
    }

    #[test]
    fn named_file_must_exist_and_unknown_keys_are_errors() {
        Jail::expect_with(|jail| {
            let e = load(Some("nope.toml")).unwrap_err();
            assert!(e.to_string().contains("nope.toml"), "{e}");
            jail.create_file("bad.toml", "adress = \"127.0.0.1:1\"\n")?;
            let e = load(Some("bad.toml")).unwrap_err().to_string();
            assert!(e.contains("adress"), "{e}");
            jail.create_file("bad2.toml", "[limits]\nper_ip_per_minute = \"many\"\n")?;
            let e = load(Some("bad2.toml")).unwrap_err().to_string();
            assert!(e.contains("per_ip_per_minute"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.limits.per_session_per_minute = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("limits.per_session_per_minute"), "{e}");

        let c = Config {
            agent_token_sha256: vec!["abc".into()],
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("agent_token_sha256") && e.contains("#1"), "{e}");

        let c = Config {
            shutdown_grace_secs: 0,
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("shutdown_grace_secs"), "{e}");

        let mut c = Config::default();
        c.http.max_connections = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("http.max_connections"), "{e}");
        let mut c = Config::default();
        c.metrics.token_sha256 = Some("nope".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("metrics.token_sha256"), "{e}");

        let mut c = Config::default();
        c.telegram.webhook = true;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("telegram.webhook_url"), "{e}");
        c.telegram.webhook_url = Some("https://bot.example/hook".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("telegram.webhook_listen"), "{e}");
        c.telegram.webhook_listen = Some("127.0.0.1:8443".parse().unwrap());
        c.validate().unwrap();
    }

    #[test]
    fn wechat_keys_are_validated_and_off_without_a_token() {
        let ok = || {
            let mut c = Config::default();
            c.wechat.token = Some("yidiToken1".into());
            c.wechat.app_id = Some("wx0123456789abcdef".into());
            c.wechat.app_secret = Some("secret".into());
            c
        };
        ok().validate().unwrap();
        // keys without a token are fine: the channel is off
        let mut c = Config::default();
        c.wechat.app_secret = Some("s".into());
        c.validate().unwrap();
        for (change, key) in [
            (
                (|c: &mut Config| c.wechat.token = Some("has space".into())) as fn(&mut Config),
                "wechat.token",
            ),
            (|c| c.wechat.app_id = None, "wechat.app_id"),
            (
                |c| c.wechat.app_secret = Some(" ".into()),
                "wechat.app_secret",
            ),
            (
                |c| c.wechat.encoding_aes_key = Some("short".into()),
                "wechat.encoding_aes_key",
            ),
            (|c| c.wechat.api_url = "ftp://x".into(), "wechat.api_url"),
            (|c| c.wechat.path = "wechat".into(), "wechat.path"),
            (|c| c.wechat.path = "/v1/wechat".into(), "wechat.path"),
            (|c| c.wechat.path = "/metrics".into(), "wechat.path"),
            (|c| c.wechat.path = "/a/{id}".into(), "wechat.path"),
            (
                |c| c.wechat.reply_deadline_ms = 5000,
                "wechat.reply_deadline_ms",
            ),
        ] {
            let mut c = ok();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
        let mut c = ok();
        c.wechat.encoding_aes_key = Some("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into());
        c.wechat.path = "/wx/callback".into();
        c.validate().unwrap();
    }

    #[test]
    fn wechat_settings_come_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("YIDI_WECHAT__TOKEN", "yidiToken1");
            jail.set_env("YIDI_WECHAT__APP_ID", "wxabc");
            jail.set_env("YIDI_WECHAT__APP_SECRET", "SECRETVALUE");
            jail.set_env("YIDI_WECHAT__REPLY_DEADLINE_MS", "0");
            let c = load(None).unwrap();
            assert_eq!(c.wechat.token.as_deref(), Some("yidiToken1"));
            assert_eq!(c.wechat.reply_deadline_ms, 0);
            assert_eq!(c.wechat.path, "/wechat");
            Ok(())
        });
    }

    #[test]
    fn the_example_file_documents_every_default() {
        let text = include_str!("../yidi.example.toml");
        let c: Config = Figment::from(Toml::string(text)).extract().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn secrets_are_never_printed() {
        let mut c = Config {
            database_url: "postgres://yidi:PASSWORD@db.internal/yidi".into(),
            ..Config::default()
        };
        c.telegram.token = Some("123456:SECRET".into());
        c.wechat.token = Some("TOKENSECRET".into());
        c.wechat.app_id = Some("wxvisible".into());
        c.wechat.app_secret = Some("APPSECRET".into());
        c.wechat.encoding_aes_key = Some("KEYSECRET".into());
        let printed = format!("{c:?}");
        assert!(printed.contains("wxvisible"), "{printed}");
        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(!printed.contains("PASSWORD"), "{printed}");
        assert!(
            printed.contains("postgres://yidi:***@db.internal/yidi"),
            "{printed}"
        );
    }

    #[test]
    fn unrelated_yidi_variables_are_ignored_but_misspelt_nested_keys_are_not() {
        Jail::expect_with(|jail| {
            jail.set_env("YIDI_CONSOLE_SCREENSHOT", "/tmp/x");
            jail.set_env("YIDI_LOG", "debug");
            assert_eq!(load(None).unwrap(), Config::default());
            jail.set_env("YIDI_LIMITS__PER_IP_PER_MINUT", "5");
            let e = load(None).unwrap_err().to_string();
            assert!(e.contains("per_ip_per_minut"), "{e}");
            Ok(())
        });
    }
}
