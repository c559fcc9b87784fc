//! `reelfarm campaign …` and `reelfarm event`: the trigger layer's API from the command line.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use proto::v1;

use farm::{runtime, status_error};

use super::connect;
use crate::cli::{CampaignCommand, ClientArgs};

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn print_version(v: &v1::CampaignVersion) {
    println!(
        "campaign {} version {} ({})",
        v.name,
        v.version,
        if v.active { "active" } else { "paused" }
    );
}

pub fn run(cmd: CampaignCommand) -> Result<()> {
    runtime()?.block_on(async move {
        match cmd {
            CampaignCommand::Put { file, client } => {
                let definition_json = read(&file)?;
                let mut farm = connect(&client).await?;
                let v = farm
                    .triggers
                    .put_campaign(v1::PutCampaignRequest { definition_json })
                    .await
                    .map_err(status_error)
                    .with_context(|| format!("campaign {}", file.display()))?
                    .into_inner();
                print_version(&v);
                println!("webhook secret (verify deliveries with it):");
                println!("{}", v.webhook_secret);
            }
            CampaignCommand::List { client } => {
                let mut farm = connect(&client).await?;
                let list = farm
                    .triggers
                    .list_campaigns(v1::ListCampaignsRequest {})
                    .await
                    .map_err(status_error)?
                    .into_inner();
                for v in &list.campaigns {
                    print_version(v);
                }
            }
            CampaignCommand::Stats { name, client } => {
                let mut farm = connect(&client).await?;
                let stats = farm
                    .triggers
                    .get_campaign_stats(v1::GetCampaignStatsRequest { name })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                println!("campaign {}", stats.name);
                for (variant, counters) in &stats.variants {
                    let line = counters
                        .counts
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    println!("  {variant:<8} {line}");
                }
            }
            CampaignCommand::Pause { name, client } => set_active(&client, name, false).await?,
            CampaignCommand::Resume { name, client } => set_active(&client, name, true).await?,
        }
        Ok(())
    })
}

async fn set_active(client: &ClientArgs, name: String, active: bool) -> Result<()> {
    let mut farm = connect(client).await?;
    let v = farm
        .triggers
        .set_campaign_active(v1::SetCampaignActiveRequest { name, active })
        .await
        .map_err(status_error)?
        .into_inner();
    print_version(&v);
    Ok(())
}

pub fn send_events(file: PathBuf, client: ClientArgs) -> Result<()> {
    let text = read(&file)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let items = match value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(ref o) if o.contains_key("events") => match o.get("events") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => bail!("{}: `events` must be an array", file.display()),
        },
        other => vec![other],
    };
    runtime()?.block_on(async move {
        let mut farm = connect(&client).await?;
        let results = farm
            .triggers
            .ingest_events(v1::IngestEventsRequest {
                events_json: items.iter().map(|v| v.to_string()).collect(),
            })
            .await
            .map_err(status_error)?
            .into_inner()
            .results;
        for r in &results {
            match &r.outcome {
                Some(v1::ingest_result::Outcome::Accepted(_)) => println!("{}: accepted", r.id),
                Some(v1::ingest_result::Outcome::Duplicate(_)) => println!("{}: duplicate", r.id),
                Some(v1::ingest_result::Outcome::Error(e)) => println!("{}: rejected: {e}", r.id),
                None => println!("{}: ?", r.id),
            }
        }
        Ok(())
    })
}
