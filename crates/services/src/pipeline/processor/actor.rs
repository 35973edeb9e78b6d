//! One actor per live order: a task that owns the order's state and applies its events through
//! the state machine, one at a time, in log order.

use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, OrderId};
use oms_domain::order::Order;
use oms_domain::state_machine::{self, Applied, IllegalTransition};
use oms_ports::order_store::OrderStore;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What the actor did with one event.
#[derive(Debug)]
pub enum Outcome {
    /// The order changed; its new state must be persisted.
    Changed(Box<Order>),
    /// A redelivery or an event that does not change the order.
    Unchanged,
    /// The state machine refused the event: a bug upstream, logged and counted, never applied.
    Illegal(IllegalTransition),
    /// No such order (an event for an order this store never saw).
    Unknown,
    /// The store could not be read; the batch must be retried.
    StoreFailed(String),
}

pub struct Message {
    pub event: Arc<Envelope>,
    pub reply: oneshot::Sender<Outcome>,
}

/// Starts the actor of one order. A new order (its first event is `OrderCreated`) starts
/// empty; any other is loaded from the store on the first message. The actor ends when its sender is dropped
/// (passivation), which the dispatcher does once a final state is persisted.
pub fn spawn(
    account: AccountId,
    order_id: OrderId,
    new_order: bool,
    store: Arc<dyn OrderStore>,
) -> mpsc::UnboundedSender<Message> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        let mut state: Option<Order> = None;
        let mut loaded = new_order;
        while let Some(msg) = rx.recv().await {
            if !loaded {
                match store.order(account, order_id).await {
                    Ok(o) => {
                        state = o;
                        loaded = true;
                    }
                    Err(e) => {
                        let _ = msg.reply.send(Outcome::StoreFailed(e.to_string()));
                        continue;
                    }
                }
            }
            let outcome = handle(&mut state, &msg.event);
            let _ = msg.reply.send(outcome);
        }
    });
    tx
}

fn handle(state: &mut Option<Order>, env: &Envelope) -> Outcome {
    if let Event::OrderCreated(new) = &env.event {
        if state.is_some() {
            return Outcome::Unchanged;
        }
        let order = Order::from_new(new);
        *state = Some(order.clone());
        return Outcome::Changed(Box::new(order));
    }
    let Some(order) = state.as_mut() else {
        return Outcome::Unknown;
    };
    match state_machine::apply(order, &env.event, env.at) {
        Ok(Applied::Changed) => Outcome::Changed(Box::new(order.clone())),
        Ok(Applied::Unchanged) => Outcome::Unchanged,
        Err(illegal) => Outcome::Illegal(illegal),
    }
}
