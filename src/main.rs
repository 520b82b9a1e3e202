//! The `yidi` binary: a thin CLI over the library (see `../shared/spec/cli.md`).

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use yidi::assistant::Assistant;
use yidi::conversation::Conversations;
use yidi::dialog::engine::SessionState;
use yidi::guidance::FieldError;
use yidi::guidance::checklist::{self, Situation};
use yidi::guidance::estimate::{self, EstimateInput};
use yidi::guidance::policy::Policies;
use yidi::render;
use yidi::scenario;
use yidi::search::eval;
use yidi::store::{DEFAULT_DATABASE_URL, Store, StoreError};
use yidi::{Knowledge, SearchEngine};

mod serve;

use serve::ServeFlags;

#[derive(Parser)]
#[command(name = "yidi", version, about = "异地就医 guidance assistant")]
struct Cli {
    #[command(flatten)]
    data: DataDirs,
    #[command(subcommand)]
    command: Command,
}

/// The data folders, for the commands that read them (given before or after the command).
#[derive(clap::Args, Clone, Default)]
struct DataDirs {
    /// The knowledge folder (FAQ, synonyms, policies, checklist texts, regions).
    #[arg(long, env = "YIDI_KNOWLEDGE")]
    knowledge: Option<PathBuf>,
    /// The dialogs folder.
    #[arg(long, env = "YIDI_DIALOGS")]
    dialogs: Option<PathBuf>,
}

impl DataDirs {
    /// These, else `outer` (the ones given before the command).
    fn or(self, outer: DataDirs) -> DataDirs {
        DataDirs {
            knowledge: self.knowledge.or(outer.knowledge),
            dialogs: self.dialogs.or(outer.dialogs),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Conversation on standard input (one message per line).
    Chat {
        #[command(flatten)]
        data: DataDirs,
        /// One JSON reply per line instead of text.
        #[arg(long)]
        json: bool,
        /// Store the conversation under this id and continue it across runs.
        #[arg(long)]
        session: Option<String>,
        /// Database for --session (SQLite file or PostgreSQL).
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Print every FAQ entry.
    Faq {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
    },
    /// Search the FAQ for QUERY, or for each line of standard input.
    Search {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        limit: usize,
        /// The question; several words are one question (`yidi search 备案 撤销`).
        query: Vec<String>,
    },
    /// Evaluate retrieval over a JSON-lines file of {"q", "id"}; with --acts, the dialog-act
    /// classifier on the held-out part of knowledge/acts.toml.
    Eval {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        /// Measure the act classifier instead (every fifth example held out).
        #[arg(long, conflicts_with = "file")]
        acts: bool,
        #[arg(required_unless_present = "acts")]
        file: Option<PathBuf>,
    },
    /// Run conversation test cases (JSON lines of {"name", "turns": [{"say", "expect"}]});
    /// prints what failed and the pass rate; exit 1 when the rate of passed turns is below --min.
    Test {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        /// The lowest acceptable share of passed turns (0 to 1).
        #[arg(long, default_value_t = 1.0)]
        min: f64,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Read callers' descriptions (one per line of standard input, or TEXT) as the console's
    /// situation box does, and print the fields each states.
    Situation {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        text: Vec<String>,
    },
    /// Show how each line of standard input (or TEXT) is read: dialog act, facts with their
    /// roles, scope and the FAQ entries it may be about (for the knowledge team).
    Read {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        text: Vec<String>,
    },
    /// Checklists for situation objects read from standard input, one per line.
    Checklist {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
    },
    /// Estimates for inputs read from standard input, one per line.
    Estimate {
        #[command(flatten)]
        data: DataDirs,
        #[arg(long)]
        json: bool,
        /// One more policy file, beside knowledge/policies/.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Validate the knowledge and dialogs folders, then report the FAQ entries whose newest
    /// source is older than --stale-after-years and those resting only on secondary sources.
    Check {
        #[command(flatten)]
        data: DataDirs,
        /// An entry is stale when its newest dated source is older than this many years.
        #[arg(long, env = "YIDI_STALE_AFTER_YEARS", default_value_t = 3)]
        stale_after_years: u32,
    },
    /// Serve the HTTP API, the agent console, (with TELOXIDE_TOKEN) the Telegram bot and
    /// (with wechat.token) the WeChat Official Account endpoint
    /// until SIGINT or SIGTERM. Settings: defaults < yidi.toml or --config < YIDI_… env <
    /// these flags (see yidi.example.toml).
    Serve {
        #[command(flatten)]
        data: DataDirs,
        /// The config file (default: ./yidi.toml when it exists).
        #[arg(long, env = "YIDI_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on: IP:PORT or HOST:PORT (port 0 picks a free port)
        /// [default: 127.0.0.1:8080].
        #[arg(long)]
        addr: Option<String>,
        /// Database for the conversations (SQLite file or PostgreSQL) [default: sqlite://yidi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Receive Telegram updates by webhook (telegram.webhook_url and
        /// telegram.webhook_listen must be configured) instead of long polling.
        #[arg(long)]
        telegram_webhook: bool,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Make a new agent token for the console: prints the token (give it to the agent) and
    /// the SHA-256 digest to put in the configuration's agent_token_sha256; then restart
    /// `yidi serve`.
    AgentToken,
    /// Delete now what residents typed that is older than the retention (retention_days of
    /// the configuration, or --days): conversations, unanswered questions, feedback.
    Purge {
        /// The config file (default: ./yidi.toml when it exists).
        #[arg(long, env = "YIDI_CONFIG")]
        config: Option<PathBuf>,
        /// The database [default: the configuration's database_url].
        #[arg(long)]
        database_url: Option<String>,
        /// Delete what is older than this many days [default: retention_days].
        #[arg(long)]
        days: Option<u32>,
    },
    /// Print the WeChat Official Account's menu (the JSON of WeChat's menu/create: its click
    /// keys start the dialogs); with --post, create it on the account of the configured
    /// wechat.app_id and wechat.app_secret.
    WechatMenu {
        /// Create the menu through WeChat's API instead of printing it.
        #[arg(long)]
        post: bool,
        /// The config file (default: ./yidi.toml when it exists).
        #[arg(long, env = "YIDI_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // a server logs its requests by default; the one-shot commands only problems
    let default_log = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YIDI_LOG")
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(io::stderr)
        // colour only on a terminal: files and journald get plain text
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
    match run(cli.command, cli.data) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Exit 1 with the validation errors.
fn invalid(what: &str, dir: &Path, errors: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    if what == "data" {
        // the errors name their own files (knowledge/… or dialogs/…)
        eprintln!("invalid data:\n{errors}");
        return Ok(ExitCode::from(1));
    }
    eprintln!("invalid {what} in {}:\n{errors}", dir.display());
    Ok(ExitCode::from(1))
}

/// A data error as a person reads it. The region files complete the checklist texts and
/// the assistant reports their errors together; here they get their own heading.
pub fn describe_load_error(e: &yidi::assistant::LoadError) -> String {
    let yidi::assistant::LoadError::Checklist(text) = e else {
        return e.to_string();
    };
    // an error starts at a line naming its file; the lines after it (a TOML excerpt) go with it
    let (mut regions, mut texts) = (Vec::new(), Vec::new());
    let mut in_regions = false;
    for line in text.lines() {
        if line.starts_with("regions/") {
            in_regions = true;
        } else if line.starts_with("checklist.toml") {
            in_regions = false;
        }
        if in_regions {
            regions.push(line);
        } else {
            texts.push(line);
        }
    }
    let mut out = Vec::new();
    if !texts.is_empty() {
        out.push(format!("invalid checklist texts:\n{}", texts.join("\n")));
    }
    if !regions.is_empty() {
        out.push(format!("invalid region files:\n{}", regions.join("\n")));
    }
    out.join("\n")
}

/// The data folders a command was given (after it, or before it), if any.
fn data_of(command: &Command) -> DataDirs {
    match command {
        Command::Chat { data, .. }
        | Command::Faq { data, .. }
        | Command::Search { data, .. }
        | Command::Eval { data, .. }
        | Command::Test { data, .. }
        | Command::Checklist { data, .. }
        | Command::Situation { data, .. }
        | Command::Read { data, .. }
        | Command::Estimate { data, .. }
        | Command::Check { data, .. }
        | Command::Serve { data, .. } => data.clone(),
        Command::AgentToken | Command::Purge { .. } | Command::WechatMenu { .. } => {
            DataDirs::default()
        }
    }
}

/// The name of a command, for its error messages (`yidi serve: …`).
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Chat { .. } => "chat",
        Command::Faq { .. } => "faq",
        Command::Search { .. } => "search",
        Command::Eval { .. } => "eval",
        Command::Test { .. } => "test",
        Command::Checklist { .. } => "checklist",
        Command::Situation { .. } => "situation",
        Command::Read { .. } => "read",
        Command::Estimate { .. } => "estimate",
        Command::Check { .. } => "check",
        Command::Serve { .. } => "serve",
        Command::AgentToken => "agent-token",
        Command::Purge { .. } => "purge",
        Command::WechatMenu { .. } => "wechat-menu",
    }
}

/// A folder given to a command that does not exist: the message naming it and how to give
/// another.
fn missing_folder(what: &str, flag: &str, dir: &Path) -> Option<String> {
    (!dir.is_dir()).then(|| {
        format!(
            "the {what} folder {} does not exist (give another with {flag} DIR, or run yidi \
             in the folder that holds knowledge/ and dialogs/)",
            dir.display()
        )
    })
}

/// Runs a command; the folders are the ones given by flag or environment, if any.
fn run(command: Command, outer: DataDirs) -> anyhow::Result<ExitCode> {
    let data = data_of(&command).or(outer);
    let (explicit_knowledge, explicit_dialogs) = (data.knowledge.clone(), data.dialogs.clone());
    let knowledge_dir = &explicit_knowledge
        .clone()
        .unwrap_or_else(yidi::default_knowledge_dir);
    let dialogs_dir = &explicit_dialogs
        .clone()
        .unwrap_or_else(yidi::default_dialogs_dir);
    let name = command_name(&command);
    let reads_dialogs = matches!(
        command,
        Command::Chat { .. } | Command::Test { .. } | Command::Check { .. } | Command::Serve { .. }
    );
    if !matches!(
        command,
        Command::AgentToken | Command::Purge { .. } | Command::WechatMenu { .. }
    ) {
        let missing = missing_folder("knowledge", "--knowledge", knowledge_dir).or_else(|| {
            reads_dialogs
                .then(|| missing_folder("dialogs", "--dialogs", dialogs_dir))
                .flatten()
        });
        if let Some(message) = missing {
            eprintln!("yidi {name}: {message}");
            return Ok(ExitCode::from(2));
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match command {
        Command::Check {
            stale_after_years, ..
        } => match Assistant::load(knowledge_dir, dialogs_dir) {
            Ok(a) => {
                writeln!(
                    out,
                    "OK: {} FAQ entries, {} synonym groups, {} out-of-scope topics, {} dialogs, {} policies",
                    a.knowledge.faqs.len(),
                    a.knowledge.synonyms.groups.len(),
                    a.knowledge.out_of_scope.len(),
                    a.dialogs.dialogs.len(),
                    a.policies.ids().count(),
                )?;
                // freshness is a report for the knowledge team, not a failure
                let report = a.knowledge.freshness(today(), stale_after_years);
                write!(out, "{}", report.report())?;
            }
            Err(e) => return invalid("data", knowledge_dir, describe_load_error(&e)),
        },
        Command::Faq { json, .. } => {
            let knowledge = match Knowledge::load(knowledge_dir) {
                Ok(k) => k,
                Err(e) => return invalid("knowledge", knowledge_dir, e),
            };
            for e in &knowledge.faqs {
                if json {
                    let v = json!({
                        "id": e.id, "question": e.question, "variants": e.variants,
                        "answer": e.answer, "sources": e.sources, "tags": e.tags,
                        "as_of": e.as_of, "tier": knowledge.tier(e),
                        "provenance": knowledge.provenance(e),
                    });
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "[{}] {}\n{}\n", e.id, e.question, e.answer)?;
                }
            }
        }
        Command::Search {
            json, limit, query, ..
        } => {
            let query = (!query.is_empty()).then(|| query.join(" "));
            let knowledge = match Knowledge::load(knowledge_dir) {
                Ok(k) => k,
                Err(e) => return invalid("knowledge", knowledge_dir, e),
            };
            let engine = SearchEngine::build(&knowledge).context("building the search index")?;
            let answer = |q: &str, out: &mut dyn Write| -> io::Result<()> {
                let r = engine.search(q, limit);
                if json {
                    writeln!(out, "{}", serde_json::to_string(&r)?)
                } else {
                    writeln!(
                        out,
                        "{} {}",
                        if r.answered {
                            "answered:"
                        } else {
                            "not answered:"
                        },
                        q
                    )?;
                    for h in &r.hits {
                        writeln!(out, "  {:>7.3}  {:<26} {}", h.score, h.id, h.question)?;
                    }
                    Ok(())
                }
            };
            match query {
                Some(q) => answer(&q, &mut out)?,
                None => {
                    // answers leave as soon as no further query is waiting (a caller that
                    // writes one line and waits gets its answer), in batches otherwise
                    let mut input = io::BufReader::with_capacity(1 << 16, io::stdin());
                    let mut bytes = Vec::new();
                    loop {
                        if input.buffer().is_empty() {
                            out.flush()?;
                        }
                        bytes.clear();
                        if input.read_until(b'\n', &mut bytes)? == 0 {
                            break;
                        }
                        if bytes.last() == Some(&b'\n') {
                            bytes.pop();
                        }
                        // a line that is not UTF-8 is searched as far as it can be read
                        let line = line_text(std::mem::take(&mut bytes)).unwrap_or_default();
                        answer(&line, &mut out)?;
                    }
                    out.flush()?;
                }
            }
        }
        Command::Eval {
            json, acts: true, ..
        } => {
            let assistant = match Assistant::load(knowledge_dir, dialogs_dir) {
                Ok(a) => a,
                Err(e) => return invalid("data", knowledge_dir, e),
            };
            let examples = assistant.reader.training_examples(&assistant.dialogs.slots);
            let held = yidi::understanding::acts::held_out(&examples);
            let accuracy = if held.total == 0 {
                1.0
            } else {
                held.correct as f64 / held.total as f64
            };
            if json {
                let misses: Vec<serde_json::Value> = held
                    .misses
                    .iter()
                    .map(|(want, text, got)| {
                        serde_json::json!({"text": text, "act": want.id(), "got": got.id()})
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"examples": examples.len(), "held_out": held.total,
                        "correct": held.correct, "accuracy": accuracy, "misses": misses})
                )?;
            } else {
                for (want, text, got) in &held.misses {
                    writeln!(out, "miss: {text} act={} got={}", want.id(), got.id())?;
                }
                writeln!(
                    out,
                    "dialog acts: {} of {} held-out examples right ({:.1}%), trained on {} examples",
                    held.correct,
                    held.total,
                    accuracy * 100.0,
                    examples.len() - held.total
                )?;
            }
        }
        Command::Eval { json, file, .. } => {
            let Some(file) = file else {
                eprintln!("yidi eval: give a FILE of {{\"q\", \"id\"}} lines, or --acts");
                return Ok(ExitCode::from(2));
            };
            let knowledge = match Knowledge::load(knowledge_dir) {
                Ok(k) => k,
                Err(e) => return invalid("knowledge", knowledge_dir, e),
            };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", file.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let cases = match eval::parse_cases(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let engine = SearchEngine::build(&knowledge).context("building the search index")?;
            let (metrics, misses, confusion) = eval::evaluate_by(&cases, |q| engine.search(q, 3));
            if json {
                writeln!(out, "{}", serde_json::to_string(&metrics)?)?;
            } else {
                writeln!(out, "{metrics:#?}")?;
                write!(out, "{}", confusion.report())?;
                for m in misses {
                    writeln!(
                        out,
                        "miss: {} expected={:?} got={:?} answered={}",
                        m.q, m.expected, m.got, m.answered
                    )?;
                }
            }
        }
        Command::Test {
            json, min, files, ..
        } => {
            if !(0.0..=1.0).contains(&min) {
                eprintln!("--min must be between 0 and 1, got {min}");
                return Ok(ExitCode::from(2));
            }
            let mut cases = Vec::new();
            let mut situations = Vec::new();
            for file in &files {
                let text = match std::fs::read_to_string(file) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("cannot read {}: {e}", file.display());
                        return Ok(ExitCode::from(2));
                    }
                };
                if scenario::is_situation_file(&text) {
                    match scenario::parse_situations(&text) {
                        Ok(c) => situations.extend(c),
                        Err(e) => {
                            eprintln!("{}: {e}", file.display());
                            return Ok(ExitCode::from(2));
                        }
                    }
                    continue;
                }
                match scenario::parse_cases(&text) {
                    Ok(c) => cases.extend(c),
                    Err(e) => {
                        eprintln!("{}: {e}", file.display());
                        return Ok(ExitCode::from(2));
                    }
                }
            }
            let assistant = match Assistant::load(knowledge_dir, dialogs_dir) {
                Ok(a) => a,
                Err(e) => return invalid("data", knowledge_dir, describe_load_error(&e)),
            };
            let report = scenario::run(&assistant, &cases);
            let read = scenario::run_situations(&assistant, &situations);
            if json {
                if !cases.is_empty() || situations.is_empty() {
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                }
                if !situations.is_empty() {
                    writeln!(out, "{}", serde_json::to_string(&read)?)?;
                }
            } else {
                for f in &report.failures {
                    writeln!(out, "FAIL {} · turn {}: {}", f.case, f.turn, f.say)?;
                    for p in &f.problems {
                        writeln!(out, "  - {p}")?;
                    }
                    let first_line = f.reply_text.lines().next().unwrap_or_default();
                    writeln!(out, "  reply ({}): {first_line}", f.reply_kind)?;
                }
                for f in &read.failures {
                    writeln!(out, "MISREAD {}", f.text)?;
                    for p in &f.problems {
                        writeln!(out, "  - {p}")?;
                    }
                }
                if !cases.is_empty() || situations.is_empty() {
                    writeln!(
                        out,
                        "{} passed, {} failed (turns; pass rate {:.1}%); cases: {} of {} passed",
                        report.turns_passed,
                        report.turns - report.turns_passed,
                        report.pass_rate * 100.0,
                        report.cases_passed,
                        report.cases
                    )?;
                }
                if !situations.is_empty() {
                    writeln!(
                        out,
                        "situations: {} of {} descriptions read right ({:.1}%)",
                        read.read_right,
                        read.descriptions,
                        read.read_right as f64 * 100.0 / read.descriptions as f64
                    )?;
                }
            }
            let situations_rate = if read.descriptions == 0 {
                1.0
            } else {
                read.read_right as f64 / read.descriptions as f64
            };
            if report.pass_rate < min || situations_rate < min {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Situation { json, text, .. } => {
            let assistant = match Assistant::load(knowledge_dir, dialogs_dir) {
                Ok(a) => a,
                Err(e) => return invalid("data", knowledge_dir, e),
            };
            let show = |line: &str, out: &mut dyn Write| -> anyhow::Result<()> {
                let slots = assistant.understand(line);
                if json {
                    writeln!(out, "{}", serde_json::json!({"text": line, "slots": slots}))?;
                } else {
                    let fields: Vec<String> =
                        slots.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    writeln!(out, "{line}\n  {}", fields.join(" "))?;
                }
                Ok(())
            };
            if text.is_empty() {
                for line in io::stdin().lock().lines() {
                    let line = line?;
                    if !line.trim().is_empty() {
                        show(&line, &mut out)?;
                    }
                }
            } else {
                show(&text.join(" "), &mut out)?;
            }
        }
        Command::Read { json, text, .. } => {
            let assistant = match Assistant::load(knowledge_dir, dialogs_dir) {
                Ok(a) => a,
                Err(e) => return invalid("data", knowledge_dir, e),
            };
            // one conversation: each line is read in the state the earlier lines left
            let mut state = yidi::dialog::engine::SessionState::new();
            let mut show = |line: &str, out: &mut dyn Write| -> anyhow::Result<()> {
                let r = assistant.read(&state, line);
                let ctx: Vec<String> = r
                    .topics
                    .in_context
                    .iter()
                    .flat_map(|c| c.hits.iter().take(3))
                    .map(|h| format!("{}:{:.0}", h.id, h.score))
                    .collect();
                let reply = assistant.handle(&mut state, line);
                let hits: Vec<String> = r
                    .topics
                    .own
                    .hits
                    .iter()
                    .take(3)
                    .map(|h| format!("{}:{:.0}", h.id, h.score))
                    .collect();
                let places: Vec<String> = r
                    .facts
                    .places
                    .iter()
                    .map(|p| format!("{}={:?}", p.mention.name, p.role))
                    .collect();
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"text": line, "act": r.act.id(),
                            "confidence": r.confidence, "asks": r.asks(),
                            "facts": r.facts.slots, "notes": r.facts.notes, "places": places,
                            "scope": format!("{:?}", r.scope), "answered": r.topics.own.answered,
                            "hits": hits, "in_context": ctx, "trigger": r.trigger,
                            "smalltalk": r.smalltalk, "reply": {"kind": reply.kind.as_str(),
                            "faq": reply.faq.as_ref().map(|f| f.id.clone())}})
                    )?;
                } else {
                    writeln!(
                        out,
                        "{line}\n  act={} ({:.2}) asks={} scope={:?} ({:.0}) smalltalk={:?} trigger={:?}\n  facts={:?} places={places:?}\n  answered={} hits={hits:?} in_context={ctx:?}\n  → {} {:?}",
                        r.act.id(),
                        r.confidence,
                        r.asks(),
                        r.scope,
                        r.topics.own.out_of_scope_score,
                        r.smalltalk,
                        r.trigger,
                        r.facts.slots,
                        r.topics.own.answered,
                        reply.kind.as_str(),
                        reply.faq.as_ref().map(|f| f.id.as_str())
                    )?;
                }
                Ok(())
            };
            if text.is_empty() {
                for line in io::stdin().lock().lines() {
                    let line = line?;
                    if !line.trim().is_empty() {
                        show(&line, &mut out)?;
                    }
                }
            } else {
                show(&text.join(" "), &mut out)?;
            }
        }
        Command::Checklist { json, .. } => {
            let texts = match checklist::load(knowledge_dir) {
                Ok(t) => t,
                Err(es) => return invalid("checklist texts", knowledge_dir, es.join("\n")),
            };
            answer_json_lines(&mut out, json, |v| {
                let list =
                    Situation::from_json(&v).and_then(|s| checklist::checklist(&s, &texts))?;
                Ok((
                    serde_json::to_string(&list).unwrap_or_default(),
                    render::checklist_text(&list, &texts, str::to_string),
                ))
            })?;
        }
        Command::Estimate { json, policy, .. } => {
            let dir = knowledge_dir.join("policies");
            let mut policies = match Policies::load_dir(&dir) {
                Ok(p) => p,
                Err(es) => return invalid("policies", &dir, join_errors(&es)),
            };
            if let Some(file) = policy
                && let Err(es) = policies.add_file(&file)
            {
                return invalid("policy", &file, join_errors(&es));
            }
            answer_json_lines(&mut out, json, |v| {
                let est =
                    EstimateInput::from_json(&v).and_then(|i| estimate::estimate(&policies, &i))?;
                Ok((
                    serde_json::to_string(&est).unwrap_or_default(),
                    render::estimate_text(&est),
                ))
            })?;
        }
        Command::Chat {
            json,
            session,
            database_url,
            ..
        } => {
            let assistant = match Assistant::load(knowledge_dir, dialogs_dir) {
                Ok(a) => a,
                Err(e) => return invalid("data", knowledge_dir, describe_load_error(&e)),
            };
            drop(out);
            return chat(assistant, json, session, &database_url);
        }
        Command::AgentToken => {
            let (token, digest) = yidi::channels::console::new_agent_token();
            writeln!(out, "token:  {token}")?;
            writeln!(out, "config: agent_token_sha256 = [\"{digest}\"]")?;
            writeln!(
                out,
                "Give the token to the agent; keep only the digest in the configuration \
                 (agent_token_sha256 in yidi.toml), then restart yidi serve."
            )?;
        }
        Command::Purge {
            config,
            database_url,
            days,
        } => {
            drop(out);
            return serve::purge(config, database_url, days);
        }
        Command::WechatMenu { post, config } => {
            drop(out);
            return serve::wechat_menu(config, post);
        }
        Command::Serve {
            config,
            addr,
            database_url,
            telegram_webhook,
            print_config,
            ..
        } => {
            drop(out);
            return serve::run(ServeFlags {
                config,
                addr,
                database_url,
                telegram_webhook,
                print_config,
                knowledge: explicit_knowledge,
                dialogs: explicit_dialogs,
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Standard input, line by line; a line that is not UTF-8 is reported, not fatal.
fn input_lines() -> impl Iterator<Item = io::Result<Result<String, FieldError>>> {
    io::stdin()
        .lock()
        .split(b'\n')
        .map(|bytes| bytes.map(line_text))
}

/// One input line (without its `\n`) as text: a trailing `\r` dropped, an error for bytes
/// that are not UTF-8.
fn line_text(mut b: Vec<u8>) -> Result<String, FieldError> {
    if b.last() == Some(&b'\r') {
        b.pop();
    }
    String::from_utf8(b)
        .map_err(|_| FieldError::new("", "这一行不是有效的 UTF-8 文本，请检查输入的编码。"))
}

/// Answers each JSON line of standard input with `answer`: its JSON form (`--json`) or its
/// text, or the error about that line; blank lines are skipped.
fn answer_json_lines(
    out: &mut impl Write,
    json: bool,
    answer: impl Fn(serde_json::Value) -> Result<(String, String), FieldError>,
) -> io::Result<()> {
    for line in input_lines() {
        let line = line?;
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        match (line.and_then(|l| parse_line(&l)).and_then(&answer), json) {
            (Ok((value, _)), true) => writeln!(out, "{value}")?,
            (Ok((_, text)), false) => writeln!(out, "{text}\n")?,
            (Err(e), true) => writeln!(out, "{}", json!({ "error": e }))?,
            (Err(e), false) => writeln!(out, "错误（{}）：{}\n", e.field, e.message)?,
        }
        out.flush()?;
    }
    Ok(())
}

fn join_errors<E: std::fmt::Display>(es: &[E]) -> String {
    es.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_line(line: &str) -> Result<serde_json::Value, FieldError> {
    serde_json::from_str(line)
        .map_err(|e| FieldError::new("", format!("这一行不是有效的 JSON：{e}")))
}

/// The terminal channel: numbered options, `--json` replies, optional stored session.
fn chat(
    assistant: Assistant,
    json: bool,
    session: Option<String>,
    database_url: &str,
) -> anyhow::Result<ExitCode> {
    let assistant = Arc::new(assistant);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let conversations = match &session {
        Some(_) => match runtime.block_on(Store::connect(database_url)) {
            Ok(store) => Some(Conversations::new(assistant.clone(), store).on_channel("terminal")),
            Err(e @ StoreError::Url(_)) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening the database {database_url}"));
            }
        },
        None => None,
    };
    let mut state = SessionState::new();
    let mut out = io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{}\n（输入“退出”结束当前问答，按 Ctrl-D 离开）",
            assistant.welcome().text
        )?;
    }
    let mut last_choices: Vec<String> = Vec::new();
    for line in input_lines() {
        let mut line =
            line?.unwrap_or_else(|_| String::from_utf8_lossy(b"\xef\xbf\xbd").into_owned());
        // the terminal's idiom: "2" picks the second option shown
        if !json
            && let Ok(n) = line.trim().parse::<usize>()
            && n >= 1
            && n <= last_choices.len()
        {
            line = last_choices[n - 1].clone();
        }
        let reply = match (&conversations, &session) {
            (Some(c), Some(id)) => runtime
                .block_on(c.turn(&c.store.caller_session_id(id), &line))
                .context("saving the conversation")?,
            _ => assistant.handle(&mut state, &line),
        };
        last_choices = reply.choices.iter().map(|c| c.value.clone()).collect();
        if json {
            writeln!(out, "{}", serde_json::to_string(&reply)?)?;
        } else {
            writeln!(out, "{}", render::terminal_text(&reply))?;
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Today's date (UTC), for the freshness report.
fn today() -> yidi::knowledge::DocDate {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    yidi::knowledge::DocDate::from_unix_days((secs / 86_400) as i64)
}
