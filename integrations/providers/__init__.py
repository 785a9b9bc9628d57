"""The provider behind a connection, built from its decrypted secrets."""

from integrations.models import Connection
from integrations.secrets import secrets_decrypt


def provider_for(connection: Connection, sleep=None):
    from integrations.mapping import DEFAULT_FIELD_MAPS, DEFAULT_STAGE_MAPS

    secrets = secrets_decrypt(connection.secrets_encrypted)
    field_map = connection.field_map or DEFAULT_FIELD_MAPS[connection.provider]
    stage_map = connection.stage_map or DEFAULT_STAGE_MAPS[connection.provider]
    if connection.provider == Connection.Provider.HUBSPOT:
        from integrations.providers.hubspot import HubSpotProvider

        return HubSpotProvider(secrets=secrets, field_map=field_map, stage_map=stage_map,
                               sleep=sleep)  # fmt: skip
    from integrations.providers.salesforce import SalesforceProvider

    return SalesforceProvider(connection=connection, secrets=secrets, field_map=field_map,
                              stage_map=stage_map, sleep=sleep)  # fmt: skip
