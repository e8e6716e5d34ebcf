"""The run store on SQLite: runs, events, search trees and sweeps. The only module that speaks SQL."""
from storage.store import (
    FINAL_STATUSES,
    RUN_STATUSES,
    RunStore,
    StoreError,
    config_key,
    default_db_path,
)

__all__ = ["FINAL_STATUSES", "RUN_STATUSES", "RunStore", "StoreError", "config_key",
           "default_db_path"]
