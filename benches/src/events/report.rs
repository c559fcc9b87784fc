//! The event benchmark's report: latency percentiles, throughput, how the trigger kept up.

use super::*;
use crate::stats::Dist;

pub(super) fn report(
    args: &Config,
    plan: &Plan,
    target: &Target,
    g: &Generated,
    accepted_total: u64,
    backlog: &Backlog,
    delivered_to_receiver: Option<u64>,
) -> Result<()> {
    let local = args.http.is_none();
    let store_kind = crate::store_kind(args.store.as_deref());
    let farm = match &args.http {
        Some(url) => url.clone(),
        None => format!(
            "local: coordinator and trigger on {store_kind}, {WORKERS} no-op workers x {SLOTS} \
             slots, campaign `{CAMPAIGN}` delivering to a receiver on loopback"
        ),
    };
    let requests = g.samples.len() as u64;
    let answered: Vec<&Answer> = g
        .samples
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok())
        .collect();
    let ok = answered.iter().filter(|a| a.status == 202).count() as u64;
    let non_202 = answered.len() as u64 - ok;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for a in answered.iter().filter(|a| a.status != 202) {
        *statuses.entry(a.status).or_default() += 1;
    }
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in &g.samples {
        if let Err(e) = &s.outcome {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let error_count: u64 = errors.values().sum();
    let accepted: u64 = answered.iter().map(|a| a.accepted).sum();
    let duplicates: u64 = answered.iter().map(|a| a.duplicates).sum();
    let rejected: u64 = answered.iter().map(|a| a.rejected).sum();
    let wall = g.wall.as_secs_f64();
    let offered = f64::from(args.rate);
    let achieved = accepted as f64 / wall.max(1e-9);
    let planned_span = plan.interval.as_secs_f64() * plan.requests as f64;

    // Latency over the 202 answers; every request (errors included) for the send delay.
    let latency = Dist::of(
        g.samples
            .iter()
            .filter(|s| matches!(&s.outcome, Ok(a) if a.status == 202))
            .map(|s| ms(s.latency))
            .collect(),
    );
    let latency_all = Dist::of(g.samples.iter().map(|s| ms(s.latency)).collect());
    let send_delay = Dist::of(g.samples.iter().map(|s| ms(s.send_delay)).collect());
    let service = Dist::of(
        g.samples
            .iter()
            .filter(|s| matches!(&s.outcome, Ok(a) if a.status == 202))
            .map(|s| ms(s.service))
            .collect(),
    );
    // Per second of the schedule: requests, p99 and max latency.
    let mut seconds: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for s in &g.samples {
        seconds
            .entry(s.scheduled.as_secs())
            .or_default()
            .push(ms(s.latency));
    }
    let per_second: Vec<(u64, usize, Dist)> = seconds
        .into_iter()
        .map(|(sec, v)| (sec, v.len(), Dist::of(v)))
        .collect();
    let worst_second = per_second
        .iter()
        .max_by(|a, b| a.2.p99.total_cmp(&b.2.p99))
        .map(|(s, n, d)| (*s, *n, *d));

    println!("farm:        {farm}");
    println!("target:      POST http://{}/v1/events", target.addr);
    println!(
        "offered:     {offered:.0} events/s = {:.1} requests/s x {} event{} for {} s ({} requests)",
        offered / f64::from(plan.batch),
        plan.batch,
        if plan.batch == 1 { "" } else { "s" },
        args.seconds,
        plan.requests
    );
    println!(
        "achieved:    {achieved:.1} events/s accepted ({accepted} in {wall:.2} s, schedule {planned_span:.2} s)"
    );
    println!(
        "answers:     {ok} x 202 of {requests} requests; {non_202} other answer{}, {error_count} error{}; \
         events {accepted} accepted, {duplicates} duplicate, {rejected} rejected",
        if statuses.is_empty() {
            if non_202 == 1 { "" } else { "s" }.to_owned()
        } else {
            format!(
                " ({})",
                statuses
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if error_count == 1 { "" } else { "s" }
    );
    for (e, n) in errors.iter().take(5) {
        println!("  error x{n}: {e}");
    }
    println!(
        "connections: {} opened, at most {} request{} in flight",
        g.connections,
        g.peak_in_flight,
        if g.peak_in_flight == 1 { "" } else { "s" }
    );
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency (ms)", "p50", "p95", "p99", "p99.9", "max", "mean"
    );
    for (name, d) in [
        ("scheduled send -> 202 answer", latency),
        ("  written -> 202 answer (server)", service),
        ("  scheduled send -> written (client)", send_delay),
    ] {
        println!(
            "{name:<40} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            d.p50, d.p95, d.p99, d.p999, d.max, d.mean
        );
    }
    if let Some((sec, n, d)) = worst_second {
        println!(
            "worst second: {sec} ({n} requests): p99 {:.2} ms, max {:.2} ms",
            d.p99, d.max
        );
    }
    let fmt_after = |v: Option<f64>| match v {
        Some(s) => format!("+{s:.1} s"),
        None => format!("not within {:.0} s", backlog.waited),
    };
    if local {
        println!(
            "trigger:     at the last answer {} of {accepted_total} events evaluated, {} renders submitted, {} delivered",
            backlog.at_end.evaluated, backlog.at_end.renders, backlog.at_end.deliveries
        );
        println!(
            "             all evaluated {}, all renders submitted {}, all delivered {}",
            fmt_after(backlog.evaluated_after),
            fmt_after(backlog.renders_after),
            fmt_after(backlog.deliveries_after)
        );
        if backlog.deliveries_after.is_none() {
            println!(
                "             when the wait ended: {} evaluated, {} renders, {} delivered",
                backlog.final_counts.evaluated,
                backlog.final_counts.renders,
                backlog.final_counts.deliveries
            );
        }
        if let Some((rate_e, rate_r, rate_d)) = steady_rates(&backlog.timeline) {
            println!(
                "             while sending: {rate_e:.0} evaluated/s, {rate_r:.0} renders/s, {rate_d:.0} deliveries/s"
            );
        }
    }

    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "farm": farm,
            "target": format!("http://{}/v1/events", target.addr),
            "offered_events_per_s": offered,
            "batch": plan.batch,
            "seconds": args.seconds,
            "requests": requests,
            "answers_202": ok,
            "non_202": non_202,
            "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "errors": error_count,
            "error_messages": errors,
            "events": {"accepted": accepted, "duplicates": duplicates, "rejected": rejected},
            "wall_s": wall,
            "achieved_events_per_s": achieved,
            "connections": g.connections,
            "peak_in_flight": g.peak_in_flight,
            "latency_ms": latency.json(),
            "latency_all_requests_ms": latency_all.json(),
            "send_delay_ms": send_delay.json(),
            "written_to_answer_ms": service.json(),
            "per_second": per_second.iter().map(|(s, n, d)| serde_json::json!({
                "second": s, "requests": n, "p50_ms": d.p50, "p99_ms": d.p99, "max_ms": d.max,
            })).collect::<Vec<_>>(),
            "trigger": if local {
                serde_json::json!({
                    "events_expected": accepted_total,
                    "at_last_answer": counts_json(backlog.at_end),
                    "evaluated_after_s": backlog.evaluated_after,
                    "renders_after_s": backlog.renders_after,
                    "deliveries_after_s": backlog.deliveries_after,
                    "when_wait_ended": counts_json(backlog.final_counts),
                    "waited_s": backlog.waited,
                    "webhooks_received": delivered_to_receiver,
                    "timeline": backlog.timeline.iter().map(|(t, c)| serde_json::json!({
                        "t_s": t, "evaluated": c.evaluated, "renders": c.renders, "deliveries": c.deliveries,
                    })).collect::<Vec<_>>(),
                })
            } else {
                serde_json::Value::Null
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("--json {}: cannot write", path.display()))?;
    }
    if ok == 0 {
        bail!("no request was answered 202");
    }
    Ok(())
}

pub(super) fn counts_json(c: Counts) -> serde_json::Value {
    serde_json::json!({"evaluated": c.evaluated, "renders": c.renders, "deliveries": c.deliveries})
}

/// Rates of the three counters between the first and the last sample taken while sending.
pub(super) fn steady_rates(timeline: &[(f64, Counts)]) -> Option<(f64, f64, f64)> {
    let (t0, a) = timeline.first()?;
    let (t1, b) = timeline.last()?;
    let dt = t1 - t0;
    if dt < 1.0 {
        return None;
    }
    Some((
        (b.evaluated - a.evaluated) as f64 / dt,
        (b.renders - a.renders) as f64 / dt,
        (b.deliveries - a.deliveries) as f64 / dt,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_events() {
        let plan = Plan {
            requests: 2,
            batch: 3,
            interval: Duration::from_millis(3),
            run_id: "t".to_owned(),
        };
        let v: serde_json::Value = serde_json::from_str(&plan.body(1)).expect("json");
        let events = v["events"].as_array().expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["id"], "t-3");
        for e in events {
            trigger::Event::from_json(&e.to_string()).expect("a valid event");
        }
        let single = Plan { batch: 1, ..plan };
        trigger::Event::from_json(&single.body(7)).expect("a valid event");
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:7601/", "k".to_owned()).expect("url");
        assert_eq!(t.addr, "127.0.0.1:7601");
        let t = Target::parse("http://farm.example", "k".to_owned()).expect("url");
        assert_eq!(t.addr, "farm.example:80");
        assert!(Target::parse("https://farm.example", "k".to_owned()).is_err());
    }
}
