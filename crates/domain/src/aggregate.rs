//! The thin `cqrs_es::Aggregate` adapter over [`execute`](crate::execute) and
//! [`Workspace::evolve`].

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::commands::WorkspaceCommand;
use crate::decide::execute;
use crate::error::DomainError;
use crate::events::WorkspaceEvent;
use crate::ports::WorkspaceServices;
use crate::state::Workspace;

impl Aggregate for Workspace {
    const TYPE: &'static str = "workspace";
    type Command = WorkspaceCommand;
    type Event = WorkspaceEvent;
    type Error = DomainError;
    type Services = WorkspaceServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in execute(self, &command, services).await? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Applies an event. cqrs-es gives `apply` no way to fail, so an event that cannot follow
    /// the state (only possible from a corrupt store) leaves the state as it was — in particular
    /// a commercial workspace stays commercial. Stores built on this crate replay with
    /// [`Workspace::evolve`], which refuses such events loudly.
    fn apply(&mut self, event: Self::Event) {
        if let Ok(next) = self.evolve(&event) {
            *self = next;
        }
    }
}
