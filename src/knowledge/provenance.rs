//! Where an entry's facts come from, and how fresh they are: the dates and reliability
//! tiers of source documents ([`DocDate`], [`Tier`]), an entry's resolved sources
//! ([`Provenance`]), and the freshness report of `yidi check` ([`Freshness`]). All pure:
//! "today" is an argument, the clock is read by the caller.

use std::fmt;

use serde::{Serialize, Serializer};

/// A document's date, as precise as it is known: a year, a month or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocDate {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl DocDate {
    /// A full date.
    pub fn ymd(year: u16, month: u8, day: u8) -> DocDate {
        DocDate {
            year,
            month: Some(month),
            day: Some(day),
        }
    }

    /// Parses "2019", "2023-06" or "2023-06-10" (a real calendar date).
    pub fn parse(text: &str) -> Result<DocDate, String> {
        let bad = || format!("{text:?} is not a date written 2019, 2019-06 or 2019-06-30");
        let mut parts = text.trim().split('-');
        let num = |p: Option<&str>, len: usize| -> Result<Option<u32>, String> {
            match p {
                None => Ok(None),
                Some(p) if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Some(p.parse().map_err(|_| bad())?))
                }
                Some(_) => Err(bad()),
            }
        };
        let year = num(parts.next(), 4)?.ok_or_else(bad)?;
        let month = num(parts.next(), 2)?;
        let day = num(parts.next(), 2)?;
        if parts.next().is_some() || !(1900..=2999).contains(&year) {
            return Err(bad());
        }
        if let Some(m) = month
            && !(1..=12).contains(&m)
        {
            return Err(bad());
        }
        if let (Some(m), Some(d)) = (month, day)
            && !(1..=days_in_month(year, m)).contains(&d)
        {
            return Err(bad());
        }
        Ok(DocDate {
            year: year as u16,
            month: month.map(|m| m as u8),
            day: day.map(|d| d as u8),
        })
    }

    /// As people write it: "2019年", "2023年6月", "2023年6月10日".
    pub fn chinese(&self) -> String {
        let mut out = format!("{}年", self.year);
        if let Some(m) = self.month {
            out.push_str(&format!("{m}月"));
        }
        if let Some(d) = self.day {
            out.push_str(&format!("{d}日"));
        }
        out
    }

    /// Whether the date names a day (not only a month or a year).
    pub fn is_full(&self) -> bool {
        self.day.is_some()
    }

    /// The last day the date may stand for ("2019" → 2019-12-31): a document dated by its
    /// year only is not called stale before the year is out.
    pub fn last_day(&self) -> (u16, u8, u8) {
        let m = self.month.unwrap_or(12);
        let d = self
            .day
            .unwrap_or_else(|| days_in_month(self.year as u32, m as u32) as u8);
        (self.year, m, d)
    }

    /// The day that is `days` days after 1970-01-01 (UTC), for a caller that reads the clock.
    pub fn from_unix_days(days: i64) -> DocDate {
        // Howard Hinnant's civil_from_days
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        DocDate::ymd(year, month, day)
    }

    /// Whether this date (its last possible day) is more than `years` years before `today`.
    pub fn older_than(&self, years: u32, today: DocDate) -> bool {
        let (y, m, d) = self.last_day();
        let limit = (u32::from(y) + years, m, d);
        let (ty, tm, td) = today.last_day();
        limit < (u32::from(ty), tm, td)
    }
}

impl fmt::Display for DocDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

impl Serialize for DocDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// How close a source came to the official text (sources.toml's header), weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Neither official text nor a quotation of it: aggregators, articles, other cities'
    /// guides.
    Secondary,
    /// An official text or statement quoted by a report or a repost.
    Quoted,
    /// The document's own full text.
    Official,
}

impl Tier {
    pub const VALUES: [&str; 3] = ["official", "quoted", "secondary"];

    pub fn parse(text: &str) -> Option<Tier> {
        match text {
            "official" => Some(Tier::Official),
            "quoted" => Some(Tier::Quoted),
            "secondary" => Some(Tier::Secondary),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Official => "official",
            Tier::Quoted => "quoted",
            Tier::Secondary => "secondary",
        }
    }

    /// The words agents and users read.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Official => "官方原文",
            Tier::Quoted => "转引官方",
            Tier::Secondary => "网络资料",
        }
    }
}

/// The words an answer resting only on secondary sources must contain (in its brief and
/// in every case), with a pointer to the hotline: "（网络资料，未见官方原文，请拨0512-12333确认）".
pub const SECONDARY_MARK: &str = "未见官方原文";

/// One of an entry's sources, resolved: what the API and the console show.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// The citation as the entry writes it ("004 第八条").
    pub source: String,
    /// The document's full title.
    pub document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<DocDate>,
    pub tier: Tier,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// An entry in the freshness report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub id: String,
    pub file: String,
    pub as_of: DocDate,
    /// The newest dated source (its id, and its date), if any source is dated.
    pub newest: Option<(String, DocDate)>,
    /// The ids of the entry's documents, each once.
    pub documents: Vec<String>,
}

/// What `yidi check` reports about freshness and reliability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    pub max_age_years: u32,
    pub today: Option<DocDate>,
    /// Entries whose newest dated source is older than `max_age_years` (or that have no
    /// dated source).
    pub stale: Vec<Flagged>,
    /// Entries whose sources are all secondary.
    pub secondary_only: Vec<Flagged>,
}

impl Freshness {
    /// The report's lines, for people.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let today = self.today.map(|d| d.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "stale: {} entries whose newest source is older than {} years (today {today}):\n",
            self.stale.len(),
            self.max_age_years
        ));
        for f in &self.stale {
            let newest = match &f.newest {
                Some((id, d)) => format!("newest source {id} of {d}"),
                None => "no dated source".to_string(),
            };
            out.push_str(&format!(
                "  {} ({}): {newest}; checked {}\n",
                f.id, f.file, f.as_of
            ));
        }
        out.push_str(&format!(
            "secondary only: {} entries resting only on secondary sources:\n",
            self.secondary_only.len()
        ));
        for f in &self.secondary_only {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                f.id,
                f.file,
                f.documents.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_at_three_precisions_and_refuse_the_rest() {
        assert_eq!(DocDate::parse("2019").unwrap().to_string(), "2019");
        assert_eq!(DocDate::parse("2023-06").unwrap().to_string(), "2023-06");
        assert_eq!(
            DocDate::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29"
        );
        for bad in [
            "",
            "19",
            "2019-6",
            "2019-13",
            "2023-02-29",
            "2019/06/01",
            "2019-06-01-1",
            "２０１９",
        ] {
            assert!(DocDate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_date_is_old_from_the_day_after_its_last_day_plus_the_age() {
        let today = DocDate::ymd(2026, 12, 7);
        assert!(!DocDate::parse("2023").unwrap().older_than(3, today));
        assert!(DocDate::parse("2023-12-06").unwrap().older_than(3, today));
        assert!(!DocDate::parse("2023-12-07").unwrap().older_than(3, today));
        assert!(DocDate::parse("2019").unwrap().older_than(3, today));
        assert!(!DocDate::parse("2019").unwrap().older_than(10, today));
        assert_eq!(DocDate::parse("2024-02").unwrap().last_day(), (2024, 2, 29));
    }

    #[test]
    fn the_clock_s_days_become_calendar_dates() {
        assert_eq!(DocDate::from_unix_days(0), DocDate::ymd(1970, 1, 1));
        assert_eq!(DocDate::from_unix_days(19_782), DocDate::ymd(2024, 2, 29));
        assert_eq!(DocDate::from_unix_days(20_794), DocDate::ymd(2026, 12, 7));
    }

    #[test]
    fn tiers_order_weakest_first() {
        assert!(Tier::Secondary < Tier::Quoted && Tier::Quoted < Tier::Official);
        for v in Tier::VALUES {
            assert_eq!(Tier::parse(v).unwrap().as_str(), v);
        }
        assert_eq!(Tier::parse("A"), None);
    }
}
