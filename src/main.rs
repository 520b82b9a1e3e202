//! The `yidi` binary: a thin CLI over the library (see `../shared/spec/cli.md`).

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use yidi::search::eval;
use yidi::{Assistant, Knowledge, SearchEngine};

#[derive(Parser)]
#[command(name = "yidi", version, about = "异地就医 guidance assistant")]
struct Cli {
    /// The knowledge folder (FAQ, synonyms, policies).
    #[arg(long, global = true, env = "YIDI_KNOWLEDGE")]
    knowledge: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Interactive chat on standard input (one message per line).
    Chat {
        /// One JSON reply per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print every FAQ entry.
    Faq {
        #[arg(long)]
        json: bool,
    },
    /// Search the FAQ for QUERY, or for each line of standard input.
    Search {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        limit: usize,
        query: Option<String>,
    },
    /// Evaluate retrieval over a JSON-lines file of {"q", "id"}.
    Eval {
        #[arg(long)]
        json: bool,
        file: PathBuf,
    },
    /// Validate the knowledge folder.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YIDI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(io::stderr)
        .init();
    let dir = cli
        .knowledge
        .clone()
        .unwrap_or_else(yidi::default_knowledge_dir);
    let knowledge = match Knowledge::load(&dir) {
        Ok(k) => k,
        Err(errors) => {
            eprintln!("invalid knowledge in {}:\n{errors}", dir.display());
            return ExitCode::from(1);
        }
    };
    match run(cli.command, knowledge) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command, knowledge: Knowledge) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match command {
        Command::Check => {
            writeln!(
                out,
                "knowledge OK: {} FAQ entries, {} synonym groups, {} sources",
                knowledge.faqs.len(),
                knowledge.synonyms.groups.len(),
                knowledge.sources.len()
            )?;
        }
        Command::Faq { json } => {
            for e in &knowledge.faqs {
                if json {
                    let v = serde_json::json!({
                        "id": e.id, "question": e.question, "variants": e.variants,
                        "answer": e.answer, "sources": e.sources, "tags": e.tags,
                    });
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "[{}] {}\n{}\n", e.id, e.question, e.answer)?;
                }
            }
        }
        Command::Search { json, limit, query } => {
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
                    for line in io::stdin().lock().lines() {
                        answer(&line?, &mut out)?;
                        out.flush()?;
                    }
                }
            }
        }
        Command::Eval { json, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let cases = match eval::parse_cases(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let engine = SearchEngine::build(&knowledge).context("building the search index")?;
            let (metrics, misses) = eval::evaluate(&engine, &cases);
            if json {
                writeln!(out, "{}", serde_json::to_string(&metrics)?)?;
            } else {
                writeln!(out, "{metrics:#?}")?;
                for m in misses {
                    writeln!(
                        out,
                        "miss: {} expected={:?} got={:?} answered={}",
                        m.q, m.expected, m.got, m.answered
                    )?;
                }
            }
        }
        Command::Chat { json } => {
            let assistant = Assistant::new(knowledge).context("building the search index")?;
            drop(out);
            yidi_chat(&assistant, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn yidi_chat(assistant: &Assistant, json: bool) -> anyhow::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{}\n（输入“退出”或按 Ctrl-D 结束）",
            assistant.welcome().text
        )?;
    }
    for line in stdin.lock().lines() {
        let line = line?;
        if !json && matches!(line.trim(), "退出" | "exit" | "quit") {
            writeln!(out, "再见，祝您早日康复！")?;
            break;
        }
        let reply = assistant.handle(&line);
        if json {
            writeln!(out, "{}", serde_json::to_string(&reply)?)?;
        } else {
            writeln!(out, "\n{}\n", reply.text)?;
        }
        out.flush()?;
    }
    Ok(())
}
