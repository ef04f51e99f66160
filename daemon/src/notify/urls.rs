//! Receiver URLs and the keys in them. A chat robot's key is the only credential its webhook
//! has (WeCom `?key=`, DingTalk `?access_token=`, Feishu's hook path): whoever reads it can post
//! into the duty group. So it comes from a secret (`[[receiver]] key = { file = … }`), is added
//! to the URL only when a request is sent, and URLs are shown redacted everywhere they are
//! printed, logged or stored (`check`, logs, dead letters' `last_error`).

use super::Format;

/// `url` with the robot's `key` where the service expects it.
pub fn with_key(format: Format, url: &str, key: Option<&str>) -> String {
    let Some(key) = key else { return url.to_string() };
    let enc: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    match format {
        Format::Wecom => format!("{url}{sep}key={enc}"),
        Format::Dingtalk => format!("{url}{sep}access_token={enc}"),
        Format::Feishu => format!("{}/{enc}", url.trim_end_matches('/')),
        Format::Generic | Format::Alertmanager => format!("{url}{sep}token={enc}"),
    }
}

/// `url` fit to print: query values and long path segments (tokens) replaced by `…`.
pub fn redacted(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else { return "(unparsable URL)".into() };
    let _ = u.set_password(None).map(|_| u.set_username(""));
    let path: Vec<String> = u
        .path_segments()
        .map(|s| s.map(|seg| if seg.len() >= 16 { "…".to_string() } else { seg.to_string() }).collect())
        .unwrap_or_default();
    if !path.is_empty() {
        u.set_path(&path.join("/"));
    }
    let query: Vec<(String, String)> = u.query_pairs().map(|(k, _)| (k.into_owned(), "…".into())).collect();
    if query.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(query);
    }
    u.to_string()
}

/// Whether `url` itself carries a credential (a query value or a long path token).
pub fn carries_key(url: &str) -> bool {
    redacted(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_where_each_service_wants_them_and_never_into_print() {
        let wecom =
            with_key(Format::Wecom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", Some("k-693a&x"));
        assert_eq!(wecom, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-693a%26x");
        assert_eq!(redacted(&wecom), "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=%E2%80%A6");
        let feishu = with_key(
            Format::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/",
            Some("0c5a5d8e-3b1f-4c2a-9d7e-1a2b3c4d5e6f"),
        );
        assert!(feishu.ends_with("/hook/0c5a5d8e-3b1f-4c2a-9d7e-1a2b3c4d5e6f"), "{feishu}");
        assert!(!redacted(&feishu).contains("0c5a5d8e"), "{}", redacted(&feishu));
        let ding = with_key(Format::Dingtalk, "https://oapi.dingtalk.com/robot/send", Some("abc"));
        assert_eq!(ding, "https://oapi.dingtalk.com/robot/send?access_token=abc");
        assert!(!redacted("https://user:pw@example.com/hook").contains("pw"));
        assert_eq!(redacted("http://127.0.0.1:9000/hook"), "http://127.0.0.1:9000/hook");
        assert!(carries_key(&ding) && !carries_key("http://127.0.0.1:9000/hook"));
    }
}
