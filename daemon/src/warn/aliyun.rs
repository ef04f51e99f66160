//! Alibaba Cloud SMS (`dysmsapi`, `SendSms`), signed as its RPC API documents (signature
//! version 1.0, HMAC-SHA1): the parameters sorted by name, each name and value percent-encoded
//! (RFC 3986: only `A-Z a-z 0-9 - _ . ~` stay), joined with `&`; the string to sign is
//! `METHOD&%2F&` and that string encoded once more; the key is the AccessKey secret and `&`.
//! The test below is the provider's own published example (AccessKey `testId`/`testSecret`,
//! signature `zJDF+Lrzhj/ThnlvIToysFRq6t4=`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeMap;

/// Everything but the unreserved characters of RFC 3986.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// The query string of `params` (sorted by name, encoded): what is signed and what is sent.
pub fn canonical(params: &BTreeMap<String, String>) -> String {
    params.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// The `Signature` of `params` for an HTTP `method` request (Base64, not yet encoded).
pub fn sign(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let to_sign = format!("{method}&{}&{}", enc("/"), enc(&canonical(params)));
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("any key length");
    mac.update(to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// One text message to one number.
#[derive(Debug, Clone)]
pub struct Sms<'a> {
    /// AccessKey id and secret.
    pub key_id: &'a str,
    pub key_secret: &'a str,
    /// The approved signature (签名) and template (模板) the text is sent under.
    pub sign_name: &'a str,
    pub template_code: &'a str,
    /// The template's variables, JSON.
    pub template_param: &'a str,
    /// The recipient.
    pub phone: &'a str,
    /// Our id for it (`OutId`): the send's row.
    pub out_id: &'a str,
}

/// The signed form body of a `POST` to the SMS endpoint, with a fresh nonce and `now` as
/// `Timestamp` (UTC, seconds).
pub fn body(sms: &Sms<'_>, nonce: &str, timestamp: &str) -> String {
    let mut p = BTreeMap::new();
    for (k, v) in [
        ("AccessKeyId", sms.key_id),
        ("Action", "SendSms"),
        ("Format", "JSON"),
        ("OutId", sms.out_id),
        ("PhoneNumbers", sms.phone),
        ("RegionId", "cn-hangzhou"),
        ("SignName", sms.sign_name),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("TemplateCode", sms.template_code),
        ("TemplateParam", sms.template_param),
        ("Timestamp", timestamp),
        ("Version", "2017-05-25"),
    ] {
        p.insert(k.to_string(), v.to_string());
    }
    let signature = sign("POST", &p, sms.key_secret);
    format!("Signature={}&{}", enc(&signature), canonical(&p))
}

/// Whether the answer says the message was accepted (`"Code": "OK"`); else what it said.
pub fn accepted(status: u16, answer: &[u8]) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
    let code = v.get("Code").and_then(|c| c.as_str()).unwrap_or("");
    let message = v.get("Message").and_then(|c| c.as_str()).unwrap_or("");
    match (status, code) {
        (200..=299, "OK") => Ok(v.get("BizId").and_then(|c| c.as_str()).unwrap_or("").to_string()),
        _ => Err(format!(
            "HTTP {status}: {} {}",
            crate::logsafe::escape(code, 64),
            crate::logsafe::escape(message, 200)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider's documented example (SendSms, GET, AccessKey testId/testSecret).
    #[test]
    fn the_documented_example_signs_as_documented() {
        let p: BTreeMap<String, String> = [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            canonical(&p),
            "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou\
             &SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8\
             &SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
             &TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D\
             &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
        );
        assert_eq!(sign("GET", &p, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
    }

    #[test]
    fn answers_are_read_as_the_provider_gives_them() {
        let ok = br#"{"Message":"OK","RequestId":"F655A8D5","BizId":"900619746936498440^0","Code":"OK"}"#;
        assert_eq!(accepted(200, ok).unwrap(), "900619746936498440^0");
        let limited = r#"{"Message":"触发分钟级流控Permits:1","Code":"isv.BUSINESS_LIMIT_CONTROL"}"#;
        assert!(accepted(200, limited.as_bytes()).unwrap_err().contains("isv.BUSINESS_LIMIT_CONTROL"));
        assert!(accepted(502, b"<html>").is_err());
    }
}
