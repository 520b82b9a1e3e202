//! Money from free text: "5万", "五万元", "3,000.50", "五万三千块二毛五", "1.2万元".
//! Exact `Decimal` arithmetic; anything ambiguous is an error with a Chinese message that
//! says what to type.

use std::str::FromStr;

use rust_decimal::Decimal;

/// The largest amount an estimate accepts (estimate.md).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);

/// Why an amount could not be read; `Display` is the message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("没有找到金额。请直接输入数字，例如“50000”“5万”或“五万元”。")]
    Missing,
    #[error("金额不能是负数。请输入实际花费的金额，例如“3000”。")]
    Negative,
    #[error("金额最多精确到分（两位小数），例如“3000.50”。")]
    TooPrecise,
    #[error("金额超过一千万元，请检查是否多输了位数。")]
    TooLarge,
    #[error("没看懂这个金额。请直接输入数字，例如“50000”“5万”或“五万三千元”。")]
    Unreadable,
}

/// Parses an amount of yuan. The text may carry 元/块/圆, 角/毛, 分, 万/千/百, Arabic or
/// Chinese numerals and thousands separators; other text around the amount is not allowed
/// (use [`find_amount`] to pick an amount out of a sentence).
pub fn parse_amount(text: &str) -> Result<Decimal, MoneyError> {
    let t: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' ' | '\u{3000}'))
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '．' => '.',
            '－' => '-',
            _ => c,
        })
        .collect();
    let t = t.strip_suffix("人民币").unwrap_or(&t);
    let t = t.strip_prefix("人民币").unwrap_or(t);
    let t = t
        .strip_prefix('¥')
        .or_else(|| t.strip_prefix('￥'))
        .unwrap_or(t);
    let t = t
        .strip_suffix("左右")
        .or_else(|| t.strip_suffix('多'))
        .unwrap_or(t);
    if t.is_empty() {
        return Err(MoneyError::Missing);
    }
    if let Some(rest) = t.strip_prefix('-').or_else(|| t.strip_prefix('负')) {
        return match parse_amount(rest) {
            Ok(v) if v.is_zero() => Ok(v),
            Ok(_) => Err(MoneyError::Negative),
            Err(e) => Err(e),
        };
    }
    let value = parse_unsigned(t)?;
    check(value)
}

/// Checks the bounds of a parsed amount (negative, precision, size).
pub fn check(value: Decimal) -> Result<Decimal, MoneyError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(MoneyError::Negative);
    }
    if value.normalize().scale() > 2 {
        return Err(MoneyError::TooPrecise);
    }
    if value > MAX_AMOUNT {
        return Err(MoneyError::TooLarge);
    }
    Ok(value.round_dp(2))
}

/// Finds the first amount in a sentence ("住院花了五万，能报多少" → 50000), if any: a run of
/// digits or Chinese numerals followed by a money unit (元/块/万/千), or a bare number of at
/// least three digits.
pub fn find_amount(text: &str) -> Option<Result<Decimal, MoneyError>> {
    find_amount_span(text).map(|(v, ..)| v)
}

/// [`find_amount`], with the words the amount was written in and a little around it (two
/// characters before, three after: "大概三万多块" for "三万"), so a caller can tell an
/// approximate figure ("三万多", "两千左右") from an exact one.
pub fn find_amount_with_words(text: &str) -> Option<(Result<Decimal, MoneyError>, String)> {
    let (value, start, end) = find_amount_span(text)?;
    let chars: Vec<char> = text.chars().collect();
    let words: String = chars[start.saturating_sub(2)..(end + 3).min(chars.len())]
        .iter()
        .collect();
    Some((value, words))
}

/// The first amount and where its run of characters stands (character offsets).
fn find_amount_span(text: &str) -> Option<(Result<Decimal, MoneyError>, usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_number_char(chars[i]) && !(is_cn_unit(chars[i]) && i == 0) {
            let start = i;
            let mut j = i;
            while j < chars.len()
                && (is_number_char(chars[j]) || is_money_unit(chars[j]) || chars[j] == ',')
            {
                j += 1;
            }
            let run: String = chars[start..j].iter().collect();
            let has_unit =
                run.chars().any(is_money_unit) || run.chars().any(|c| matches!(c, '万' | '千'));
            let digits = run.chars().filter(char::is_ascii_digit).count();
            let cn_digits = run.chars().any(|c| cn_digit(c).is_some());
            // 2024年, 3天, 2次, 65岁 are not money
            let followed_by_count = chars.get(j).is_some_and(|c| {
                matches!(
                    c,
                    '年' | '月' | '日' | '号' | '天' | '次' | '岁' | '个' | '-'
                )
            });
            // and neither is the second half of 0512-12333
            let phone_tail =
                start > 1 && chars[start - 1] == '-' && chars[start - 2].is_ascii_digit();
            // "一块住", "一块儿": together, not one yuan
            let together = run == "一块" && chars.get(j).is_none_or(|c| *c != '钱');
            if !followed_by_count
                && !phone_tail
                && !together
                && ((has_unit && (digits > 0 || cn_digits)) || digits >= 3)
            {
                // "1e30元", "2^10元": the run is only the tail (or the head) of a number
                // written in a way this parser cannot read whole, so reading the run alone
                // would misread it (30 元): refused instead
                if part_of_unreadable_number(&chars, start, j) {
                    return Some((Err(MoneyError::Unreadable), start, j));
                }
                let negative = start > 0 && matches!(chars[start - 1], '-' | '负');
                let parsed = parse_amount(run.trim_end_matches(','));
                return Some((
                    match parsed {
                        Ok(v) if negative && !v.is_zero() => Err(MoneyError::Negative),
                        other => other,
                    },
                    start,
                    j,
                ));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Whether the number run `chars[start..end]` continues a number written in a notation the
/// parser does not read: scientific notation (`1e30`, `1.5E+3`, `3e-2`), a power (`10^6`), or
/// chat shorthand for thousands (`300w`, `20k`), on either side of the run.
fn part_of_unreadable_number(chars: &[char], start: usize, end: usize) -> bool {
    let at = |i: usize| chars.get(i).copied();
    let digit_like = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
    let exponent = |c: Option<char>| matches!(c, Some('e' | 'E'));
    let sign = |c: Option<char>| matches!(c, Some('+' | '-' | '－' | '＋'));
    // before the run: "1e" + run, "1e+" + run, "10^" + run
    let before = |k: usize| start.checked_sub(k).and_then(at);
    let left = (exponent(before(1)) && digit_like(before(2)))
        || (sign(before(1)) && exponent(before(2)) && digit_like(before(3)))
        || matches!(before(1), Some('^'));
    // after the run (when it ends in a digit): run + "e3", run + "e+3", run + "^6", and chat
    // shorthand for thousands and ten-thousands: run + "w", run + "k" ("300w", "20k")
    let ends_in_digit = end > start && digit_like(at(end - 1));
    let right = ends_in_digit
        && ((exponent(at(end))
            && (digit_like(at(end + 1)) || (sign(at(end + 1)) && digit_like(at(end + 2)))))
            || matches!(at(end), Some('^' | 'k' | 'K' | 'w' | 'W')));
    left || right
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || cn_digit(c).is_some() || is_cn_unit(c)
}

fn is_cn_unit(c: char) -> bool {
    matches!(c, '十' | '拾' | '百' | '佰' | '千' | '仟' | '万' | '亿')
}

fn is_money_unit(c: char) -> bool {
    matches!(c, '元' | '块' | '圆' | '角' | '毛' | '分' | '钱')
}

fn cn_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' => 0,
        '一' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// "5万", "1.2万", "五万三千块二毛五", "3000.50元", "八百块".
fn parse_unsigned(t: &str) -> Result<Decimal, MoneyError> {
    // split into yuan part and fraction part (角/毛, 分)
    let t = t.strip_suffix('钱').unwrap_or(t);
    let (yuan_part, rest) = match t.find(['元', '块', '圆']) {
        Some(p) => {
            let unit_len = t[p..].chars().next().map_or(0, char::len_utf8);
            (&t[..p], &t[p + unit_len..])
        }
        None => (t, ""),
    };
    // a bare "二毛五" (no yuan) is allowed too
    let (yuan_part, rest) = if rest.is_empty() && yuan_part.contains(['角', '毛', '分']) {
        ("", yuan_part)
    } else {
        (yuan_part, rest)
    };
    let yuan = if yuan_part.is_empty() {
        Decimal::ZERO
    } else {
        parse_number(yuan_part)?
    };
    let fraction = parse_fraction(rest)?;
    if !fraction.is_zero() && yuan.normalize().scale() > 0 {
        return Err(MoneyError::Unreadable);
    }
    Ok(yuan + fraction)
}

/// 角/毛 and 分 after the yuan: "二毛五" = 0.25, "5角", "3分", "" = 0.
fn parse_fraction(t: &str) -> Result<Decimal, MoneyError> {
    if t.is_empty() {
        return Ok(Decimal::ZERO);
    }
    let mut jiao = None;
    let mut fen = None;
    let mut rest = t;
    if let Some(p) = rest.find(['角', '毛']) {
        jiao = Some(single_digit(&rest[..p])?);
        rest = &rest[p + '角'.len_utf8()..];
    }
    if let Some(p) = rest.find('分') {
        fen = Some(single_digit(&rest[..p])?);
        rest = &rest[p + '分'.len_utf8()..];
    } else if !rest.is_empty() && jiao.is_some() {
        // "二毛五": the trailing digit is 分
        fen = Some(single_digit(rest)?);
        rest = "";
    }
    if !rest.is_empty() || (jiao.is_none() && fen.is_none()) {
        return Err(MoneyError::Unreadable);
    }
    Ok(Decimal::new(
        i64::from(jiao.unwrap_or(0)) * 10 + i64::from(fen.unwrap_or(0)),
        2,
    ))
}

fn single_digit(t: &str) -> Result<u32, MoneyError> {
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => c
            .to_digit(10)
            .or_else(|| cn_digit(c))
            .ok_or(MoneyError::Unreadable),
        _ => Err(MoneyError::Unreadable),
    }
}

/// A number with optional 万/千/百/十 multipliers, in Arabic or Chinese numerals.
fn parse_number(t: &str) -> Result<Decimal, MoneyError> {
    if t.is_empty() {
        return Err(MoneyError::Unreadable);
    }
    // Arabic digits with an optional trailing multiplier: "5万", "1.2万", "3000.50"
    if t.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
    {
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let number = Decimal::from_str(&t[..end]).map_err(|_| MoneyError::Unreadable)?;
        let multiplier = match &t[end..] {
            "" => Decimal::ONE,
            "万" => Decimal::from(10_000),
            "千" => Decimal::from(1_000),
            "百" => Decimal::from(100),
            "十" => Decimal::from(10),
            "万元" | "千元" => return Err(MoneyError::Unreadable),
            // "5万3千" style mixes
            _ => return parse_chinese(t),
        };
        return number.checked_mul(multiplier).ok_or(MoneyError::TooLarge);
    }
    parse_chinese(t)
}

/// Chinese numerals with units, e.g. 五万三千 = 53000, 一万零五百 = 10500, 十二 = 12,
/// 两千五 = 2500 (a trailing digit after a unit scales to the next lower unit).
/// Arabic digits may stand for Chinese ones ("5万3千").
fn parse_chinese(t: &str) -> Result<Decimal, MoneyError> {
    const LIMIT: u64 = 1_000_000_000_000;
    let too_large = || MoneyError::TooLarge;
    let mut total: u64 = 0; // completed 万/亿 sections
    let mut section: u64 = 0; // below 万
    let mut digit: Option<u64> = None;
    let mut last_unit: u64 = 0;
    // the character before the pending digit: a unit (两千五) or 零 (一千零五)
    let mut after_unit = false;
    let mut prev: Option<char> = None;
    for c in t.chars() {
        if let Some(d) = cn_digit(c).or_else(|| c.to_digit(10)) {
            digit = Some(match digit {
                Some(prev) if c.is_ascii_digit() => prev
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d)))
                    .filter(|v| *v < LIMIT)
                    .ok_or_else(too_large)?,
                _ => u64::from(d),
            });
            after_unit = prev.is_some_and(|p| unit_value(p).is_some());
            prev = Some(c);
            continue;
        }
        let unit = unit_value(c).ok_or(MoneyError::Unreadable)?;
        if unit >= 10_000 {
            let value = section
                .checked_add(digit.take().unwrap_or(0))
                .ok_or_else(too_large)?;
            let value = if value == 0 && total == 0 { 1 } else { value };
            total = total
                .checked_add(value)
                .and_then(|v| v.checked_mul(unit))
                .filter(|v| *v < LIMIT)
                .ok_or_else(too_large)?;
            section = 0;
        } else {
            let d = digit.take().unwrap_or(1);
            section = d
                .checked_mul(unit)
                .and_then(|v| v.checked_add(section))
                .ok_or_else(too_large)?;
        }
        last_unit = unit;
        prev = Some(c);
    }
    if let Some(d) = digit {
        // "两千五" → 2500, "1万5" → 15000: a lone trailing digit right after a unit means the
        // next lower unit; after 零 ("一千零五") it is just the digit
        let scale = if last_unit >= 10 && after_unit && d < 10 {
            last_unit / 10
        } else {
            1
        };
        section = d
            .checked_mul(scale)
            .and_then(|v| v.checked_add(section))
            .ok_or_else(too_large)?;
    }
    total
        .checked_add(section)
        .filter(|v| *v < LIMIT)
        .map(Decimal::from)
        .ok_or_else(too_large)
}

fn unit_value(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1_000,
        '万' => 10_000,
        '亿' => 100_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse_amount(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .to_string()
    }

    #[test]
    fn arabic_amounts() {
        assert_eq!(ok("50000"), "50000");
        assert_eq!(ok("3,000.50"), "3000.50");
        assert_eq!(ok("3000.5元"), "3000.5");
        assert_eq!(ok("5万"), "50000");
        assert_eq!(ok("1.2万元"), "12000.0");
        assert_eq!(ok("８００块"), "800");
        assert_eq!(ok("¥1,234.56"), "1234.56");
    }

    #[test]
    fn chinese_amounts() {
        assert_eq!(ok("五万"), "50000");
        assert_eq!(ok("五万元"), "50000");
        assert_eq!(ok("五万三千块二毛五"), "53000.25");
        assert_eq!(ok("两千五"), "2500");
        assert_eq!(ok("一万零五百元"), "10500");
        assert_eq!(ok("十二块"), "12");
        assert_eq!(ok("八百块五毛"), "800.50");
        assert_eq!(ok("5万3千"), "53000");
        assert_eq!(ok("1万5"), "15000");
        assert_eq!(ok("3千5"), "3500");
        assert_eq!(ok("一百零五"), "105");
        assert_eq!(ok("一千零五元"), "1005");
    }

    #[test]
    fn bad_amounts_say_what_is_wrong() {
        assert_eq!(parse_amount("-500"), Err(MoneyError::Negative));
        assert_eq!(parse_amount("负五百"), Err(MoneyError::Negative));
        assert_eq!(parse_amount("12.345"), Err(MoneyError::TooPrecise));
        assert_eq!(parse_amount("20000000"), Err(MoneyError::TooLarge));
        assert_eq!(parse_amount("三千万"), Err(MoneyError::TooLarge));
        assert_eq!(parse_amount("abc元"), Err(MoneyError::Unreadable));
        assert_eq!(parse_amount("五万abc"), Err(MoneyError::Unreadable));
        assert_eq!(parse_amount(""), Err(MoneyError::Missing));
        assert!(MoneyError::Unreadable.to_string().contains("例如"));
    }

    #[test]
    fn numbers_in_other_notations_are_refused_not_misread() {
        let found = |t: &str| find_amount(t).map(|r| r.map(|d| d.to_string()));
        for text in [
            "1e30元",
            "住院花了1e30元",
            "花了1E30块",
            "花了1e+30元",
            "花了1.5e3元",
            "花了3e-2元",
            "100e3",
            "花了10^6元",
            "花了2^20元",
            "住院花了300w",
            "一共200K",
        ] {
            assert_eq!(found(text), Some(Err(MoneyError::Unreadable)), "{text}");
            assert_eq!(parse_amount(text), Err(MoneyError::Unreadable), "{text}");
        }
        // ordinary amounts around letters and signs still read
        assert_eq!(found("花了5万元RMB"), Some(Ok("50000".into())));
        assert_eq!(found("住院3000元，e保通"), Some(Ok("3000".into())));
        assert_eq!(found("一共3000元"), Some(Ok("3000".into())));
    }

    #[test]
    fn amounts_are_found_in_sentences() {
        let found = |t: &str| find_amount(t).map(|r| r.map(|d| d.to_string()));
        assert_eq!(found("住院花了五万，能报多少？"), Some(Ok("50000".into())));
        assert_eq!(found("总共花了 23,456.70 元"), Some(Ok("23456.70".into())));
        assert_eq!(found("一共3万块左右"), Some(Ok("30000".into())));
        assert_eq!(found("花了-500元"), Some(Err(MoneyError::Negative)));
        assert_eq!(found("我是张家港的退休职工"), None);
        assert_eq!(found("住了3天"), None);
        assert_eq!(
            found("2024年在上海住院花了5万能报多少"),
            Some(Ok("50000".into()))
        );
        assert_eq!(found("张家港医保电话0512-12333"), None);
        assert_eq!(
            found("住院花了5万99999999999999999999"),
            Some(Err(MoneyError::TooLarge))
        );
    }
}
