//! The XML of WeChat's server API: messages and events as they arrive (read with quick-xml's
//! serde support; unknown elements are ignored, as WeChat adds fields over time), and the
//! passive replies written back (quick-xml's writer, text in CDATA sections as WeChat's
//! documentation shows them).

use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesText};
use serde::Deserialize;

/// A message or event as WeChat posts it (plaintext mode, or the decrypted `Encrypt`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Incoming {
    /// The account's original id (`gh_…`); a reply is sent from it.
    #[serde(rename = "ToUserName")]
    pub to_user: String,
    /// The user's OpenID for this account.
    #[serde(rename = "FromUserName")]
    pub from_user: String,
    #[serde(rename = "CreateTime")]
    pub create_time: i64,
    /// `text`, `image`, `voice`, `video`, `shortvideo`, `location`, `link`, `event`, …
    #[serde(rename = "MsgType")]
    pub msg_type: String,
    #[serde(rename = "Content")]
    pub content: Option<String>,
    #[serde(rename = "MsgId")]
    pub msg_id: Option<String>,
    /// For `event`: `subscribe`, `unsubscribe`, `CLICK`, `VIEW`, `SCAN`, `LOCATION`, …
    #[serde(rename = "Event")]
    pub event: Option<String>,
    #[serde(rename = "EventKey")]
    pub event_key: Option<String>,
}

/// The outer envelope in safe mode: `<xml><ToUserName/><Encrypt/></xml>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Envelope {
    #[serde(rename = "Encrypt")]
    pub encrypt: Option<String>,
}

/// Parses a message or event.
pub fn parse(xml: &str) -> Result<Incoming, quick_xml::DeError> {
    quick_xml::de::from_str(xml)
}

/// Parses the safe-mode envelope.
pub fn parse_envelope(xml: &str) -> Result<Envelope, quick_xml::DeError> {
    quick_xml::de::from_str(xml)
}

impl Incoming {
    /// What identifies this message across WeChat's retries: the `MsgId` of a message, the
    /// sender, time and event of an event (WeChat's own advice for de-duplication).
    pub fn dedup_key(&self) -> String {
        match self.msg_id.as_deref().filter(|id| !id.trim().is_empty()) {
            // MsgIds are unique per account in practice, but a reused one from another user
            // must not get this user's reply: the sender is part of the key
            Some(id) => format!("msg:{}:{}", self.from_user, id.trim()),
            None => format!(
                "evt:{}:{}:{}:{}",
                self.from_user,
                self.create_time,
                self.event.as_deref().unwrap_or(&self.msg_type),
                self.event_key.as_deref().unwrap_or("")
            ),
        }
    }
}

/// A passive text reply from `account` to `user`.
pub fn text_reply(user: &str, account: &str, create_time: i64, content: &str) -> String {
    element(|w| {
        cdata(w, "ToUserName", user)?;
        cdata(w, "FromUserName", account)?;
        plain(w, "CreateTime", &create_time.to_string())?;
        cdata(w, "MsgType", "text")?;
        cdata(w, "Content", content)
    })
}

/// The safe-mode envelope of an encrypted reply.
pub fn encrypted_reply(encrypt: &str, signature: &str, timestamp: &str, nonce: &str) -> String {
    element(|w| {
        cdata(w, "Encrypt", encrypt)?;
        cdata(w, "MsgSignature", signature)?;
        plain(w, "TimeStamp", timestamp)?;
        cdata(w, "Nonce", nonce)
    })
}

/// `<xml>…</xml>` with the elements `inner` writes.
fn element(inner: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>) -> String {
    let mut w = Writer::new(Vec::new());
    // writing into a Vec cannot fail
    let _ = w.create_element("xml").write_inner_content(inner);
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

fn cdata(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> std::io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        // a text holding "]]>" becomes several CDATA sections
        for section in BytesCData::escaped(text) {
            w.write_event(quick_xml::events::Event::CData(section))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn plain(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_text_message_as_documented() {
        let xml = "<xml><ToUserName><![CDATA[gh_123]]></ToUserName>\
            <FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>1348831860</CreateTime>\
            <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[备案要带什么<&>]]></Content>\
            <MsgId>1234567890123456</MsgId><MsgDataId>x</MsgDataId><Idx>1</Idx></xml>";
        let m = parse(xml).unwrap();
        assert_eq!(m.to_user, "gh_123");
        assert_eq!(m.from_user, "oUser");
        assert_eq!(m.create_time, 1348831860);
        assert_eq!(m.msg_type, "text");
        assert_eq!(m.content.as_deref(), Some("备案要带什么<&>"));
        assert_eq!(m.dedup_key(), "msg:oUser:1234567890123456");
    }

    #[test]
    fn reads_events_and_keys_them_by_sender_and_time() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
            <CreateTime>7</CreateTime><MsgType>event</MsgType><Event>CLICK</Event>\
            <EventKey>estimate</EventKey></xml>";
        let m = parse(xml).unwrap();
        assert_eq!(m.event.as_deref(), Some("CLICK"));
        assert_eq!(m.event_key.as_deref(), Some("estimate"));
        assert_eq!(m.dedup_key(), "evt:o1:7:CLICK:estimate");
        assert!(parse("<xml><CreateTime>soon</CreateTime></xml>").is_err());
        assert!(parse("not xml").is_err());
    }

    #[test]
    fn a_reply_round_trips_even_with_cdata_terminators() {
        let content = "第一行\n<b>&\"]]>'";
        let xml = text_reply("oUser", "gh_1", 42, content);
        assert!(
            xml.starts_with("<xml><ToUserName><![CDATA[oUser]]></ToUserName>"),
            "{xml}"
        );
        let back = parse(&xml).unwrap();
        assert_eq!(back.content.as_deref(), Some(content));
        assert_eq!(back.to_user, "oUser");
        assert_eq!(back.from_user, "gh_1");
        assert_eq!(back.create_time, 42);
        assert_eq!(back.msg_type, "text");
    }
}
