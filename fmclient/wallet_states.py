"""The states of `MintWallet`'s operations and notes (fmclient/wallet_operations.py), each an
enum whose docstring draws the moves its table allows (gwcore/states.py; the drawing is checked
against the table by tests/gwcore/test_state_diagrams.py). The wallet writes no state without
`check`."""

from __future__ import annotations

from enum import StrEnum

from gwcore.states import StateMachine


class OperationState(StrEnum):
    """A receive, a split, or another module's claim or payment carried in a transaction of
    ours (created signed and stored, before anything is sent); a spend is created `done`:

        created --accepted by the federation--> submitted --notes issued and stored--> done
                \\--refused by the federation--> rejected
    """

    CREATED = "created"
    SUBMITTED = "submitted"
    DONE = "done"
    REJECTED = "rejected"


OPERATION = StateMachine(
    OperationState,
    {
        OperationState.CREATED: {OperationState.SUBMITTED, OperationState.REJECTED},
        OperationState.SUBMITTED: {OperationState.DONE},
    },
)


class NoteState(StrEnum):
    """A note of ours (created `unspent` when issued to us; someone else's notes we reissue
    are created `spending` and forgotten if the federation refuses them):

        unspent --an operation's input--> spending --its transaction accepted--> spent
                                          \\--its transaction refused--> unspent
        unspent --given away by a spend--> exported
    """

    UNSPENT = "unspent"
    SPENDING = "spending"
    SPENT = "spent"
    EXPORTED = "exported"


NOTE = StateMachine(
    NoteState,
    {
        NoteState.UNSPENT: {NoteState.SPENDING, NoteState.EXPORTED},
        NoteState.SPENDING: {NoteState.SPENT, NoteState.UNSPENT},
    },
)
